"""A minimal CloudEvents sink: accepts binary-mode events and batches, counts them by type.

It stands in for the drift monitor when the serving benchmark measures the
payload logger's cost, so the figure is the logger's overhead and not the
monitor's detector work. ``GET /count`` returns the tallies as JSON; any POST
answers 202. A CloudEvents JSON batch (what the payload logger sends when
several events are queued) counts each of its events. Plain asyncio streams
keep the sink itself cheap on a 2-core box.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

from driftloop.monitor.events import is_batch

counts: Counter[str] = Counter()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readline()
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def count(headers: dict[str, str], body: bytes) -> None:
    if is_batch(headers.get("content-type")):
        for event in json.loads(body):
            counts[event.get("type", "(no type)")] += 1
    else:
        counts[headers.get("ce-type", "(no ce-type)")] += 1


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                break
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            received = await _read_body(reader, headers)
            if method == "GET" and path.startswith("/count"):
                body = json.dumps({"total": sum(counts.values()), "by_type": counts}).encode()
                status = "200 OK"
            else:
                count(headers, received)
                body, status = b"", "202 Accepted"
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n"
                f"content-type: application/json\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
