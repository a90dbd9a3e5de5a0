"""An asyncio HTTP/1.1 load generator that counts every answer exactly.

Runs ``--concurrency`` keep-alive connections, each POSTing the same body back
to back for ``--seconds``; a connection that is past the deadline finishes the
request it has in flight before it stops. So, unlike ``wrk`` (which abandons
in-flight requests when its time is up, though the server answers and stores
them), the 2xx count here is exactly the number of answers the server gave:
what the soak compares with the rows in the prediction store.

Prints one JSON line: ok (2xx), non_2xx (by status), transport_errors (by
kind), seconds, p50/p95/p99 in ms, ``timeline`` (2xx answers completed in each
second of the run) and the CPU seconds this process spent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit


def build_request(url: str, body: bytes, content_type: str = "application/json") -> bytes:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"POST {path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep-alive) of one HTTP/1.1 response; its body is read and dropped."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("connection closed before the status line")
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        key, _, value = line.partition(b":")
        headers[key.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    else:
        length = int(headers.get(b"content-length", b"0") or 0)
        if length:
            await reader.readexactly(length)
    return status, headers.get(b"connection", b"").lower() != b"close"


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def drive(
    url: str, body: bytes, concurrency: int, seconds: float, timeout_s: float = 10.0
) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = build_request(url, body)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    transport: Counter[str] = Counter()
    timeline: Counter[int] = Counter()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    deadline = started + seconds

    async def connection() -> None:
        reader = writer = None
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), timeout_s
                    )
                sent = time.perf_counter()
                writer.write(request)
                await writer.drain()
                status, keep_alive = await asyncio.wait_for(read_response(reader), timeout_s)
                done = time.perf_counter()
                statuses[status] += 1
                if 200 <= status < 300:
                    latencies.append(done - sent)
                    timeline[int(done - started)] += 1
                if not keep_alive:
                    writer.close()
                    writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                transport[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    millis = sorted(latency * 1000 for latency in latencies)
    last_second = max(timeline, default=-1)
    return {
        "concurrency": concurrency,
        "ok": ok,
        "non_2xx": {str(s): c for s, c in statuses.items() if not 200 <= s < 300},
        "transport_errors": dict(transport),
        "errors": sum(statuses.values()) - ok + sum(transport.values()),
        "seconds": elapsed,
        "rps": ok / elapsed if elapsed else 0.0,
        "p50_ms": percentile(millis, 50),
        "p95_ms": percentile(millis, 95),
        "p99_ms": percentile(millis, 99),
        "timeline": [timeline.get(second, 0) for second in range(last_second + 1)],
        "cpu_s": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path to POST to")
    parser.add_argument("--body", required=True, type=Path, help="file with the request body")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.seconds <= 0:
        parser.error("--concurrency must be >= 1 and --seconds > 0")
    body = args.body.read_bytes()
    result = asyncio.run(drive(args.url, body, args.concurrency, args.seconds, args.timeout))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
