"""Load generators and what they cost.

REST load comes from ``wrk`` (C, event loop; a Lua script POSTs a fixed body
and prints the latency percentiles as JSON from ``done``). gRPC load comes
from :mod:`bench.grpc_load`, an asyncio ``grpc.aio`` client in its own
process. Both run on the machine they measure, so each run also reports the
generator's CPU time (``os.wait4`` rusage of the child) as a share of the
machine: on 2 cores a generator that eats 40 % of one core is part of the
story.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

WRK_POST_BODY = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
"""

WRK_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass
class LoadResult:
    generator: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    generator_cpu_s: float
    generator_cpu_share: float  # of the whole machine (1.0 = every core busy)
    server_cpu_share: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_share(cpu_seconds: float, wall_seconds: float, cores: int | None = None) -> float:
    """CPU seconds spent over wall seconds, as a fraction of all cores."""
    cores = cores or os.cpu_count() or 1
    if wall_seconds <= 0:
        return 0.0
    return cpu_seconds / (wall_seconds * cores)


def process_cpu_seconds(pid: int) -> float:
    """utime+stime of a live process (and its threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[11], fields[12] are utime, stime (fields 14, 15 of proc(5), after pid and comm)
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its live children (uvicorn workers, mlserver workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:2])
        for child in root.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def parse_wrk_output(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"wrk printed no result line; output was:\n{stdout[-2000:]}")


def _run_measured(command: list[str], env: dict, timeout: float) -> tuple[str, str, float, float]:
    """Run a child to completion; return stdout, stderr, wall seconds and its CPU seconds."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                raise TimeoutError(f"{command[0]} ran past {timeout:.0f} s")
            time.sleep(0.05)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {child.returncode}: {stderr[-1500:]}")
    return stdout, stderr, wall, usage.ru_utime + usage.ru_stime


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    body: bytes = b"",
    *,
    concurrency: int,
    seconds: float,
    server_pid: int | None = None,
    timeout_s: float = 10.0,
    lua: str | None = None,
) -> LoadResult:
    """POST ``body`` to ``url`` with ``concurrency`` keep-alive connections for ``seconds``.

    ``lua`` replaces the fixed-body request script (e.g. to vary headers per
    request); the ``done`` hook that reports percentiles is always appended.
    """
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text((lua if lua is not None else WRK_POST_BODY) + WRK_DONE)
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        threads = max(1, min(concurrency, os.cpu_count() or 1))
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s:.0f}s",
            "-s",
            str(script),
            url,
        ]
        env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
        server_before = tree_cpu_seconds(server_pid) if server_pid else None
        stdout, _, wall, cpu = _run_measured(command, env, timeout=seconds + timeout_s + 30)
        server_after = tree_cpu_seconds(server_pid) if server_pid else None
    parsed = parse_wrk_output(stdout)
    duration = parsed["duration_us"] / 1e6
    errors = sum(parsed["errors"].values())
    good = parsed["requests"] - parsed["errors"]["status"]
    return LoadResult(
        generator="wrk",
        concurrency=concurrency,
        requests=parsed["requests"],
        errors=errors,
        seconds=duration,
        rps=good / duration if duration else 0.0,
        p50_ms=parsed["p50_us"] / 1000,
        p95_ms=parsed["p95_us"] / 1000,
        p99_ms=parsed["p99_us"] / 1000,
        generator_cpu_s=cpu,
        generator_cpu_share=cpu_share(cpu, wall),
        server_cpu_share=(
            cpu_share(server_after - server_before, wall) if server_pid is not None else None
        ),
    )


def run_grpc_load(
    target: str,
    model: str,
    request_file: Path,
    *,
    concurrency: int,
    seconds: float,
    server_pid: int | None = None,
) -> LoadResult:
    """Drive a v2 gRPC ModelInfer endpoint with :mod:`bench.grpc_load` in a child process."""
    command = [
        sys.executable,
        "-m",
        "bench.grpc_load",
        "--target",
        target,
        "--model",
        model,
        "--request",
        str(request_file),
        "--concurrency",
        str(concurrency),
        "--seconds",
        str(seconds),
    ] + (["--server-pid", str(server_pid)] if server_pid else [])
    env = {**os.environ, "PYTHONPATH": _repo_pythonpath()}
    stdout, _, _, _ = _run_measured(command, env, timeout=seconds + 60)
    parsed = json.loads(stdout.strip().splitlines()[-1])
    return LoadResult(
        generator="grpc.aio",
        concurrency=concurrency,
        requests=parsed["requests"],
        errors=parsed["errors"],
        seconds=parsed["seconds"],
        rps=parsed["ok"] / parsed["seconds"] if parsed["seconds"] else 0.0,
        p50_ms=parsed["p50_ms"],
        p95_ms=parsed["p95_ms"],
        p99_ms=parsed["p99_ms"],
        # the client's own rusage over the load window: interpreter start-up is not load
        generator_cpu_s=parsed["cpu_s"],
        generator_cpu_share=cpu_share(parsed["cpu_s"], parsed["seconds"]),
        server_cpu_share=(
            cpu_share(parsed["server_cpu_s"], parsed["seconds"])
            if parsed.get("server_cpu_s") is not None
            else None
        ),
    )


def _repo_pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[1])
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root
