"""Start a server as a child process, wait until it answers, always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from driftloop.ports import free_port, free_ports  # noqa: F401 - the bench's one source of ports

REPO = Path(__file__).resolve().parents[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment for a server child: one math thread, unbuffered, the bench importable.

    ``OMP_NUM_THREADS=1``: with OpenMP's default (a thread per core) XGBoost spin-waits
    against the server's own threads on 2 cores and answers ~35x slower.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(REPO) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.update(extra or {})
    return env


@dataclass
class Server:
    name: str
    pid: int
    log: Path
    http_port: int | None = None
    grpc_port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def wait_http_ok(
    url: str, *, timeout_s: float, process: subprocess.Popen | None = None, log: Path | None = None
) -> None:
    """Poll ``url`` until it returns 2xx; fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode} before ready:\n{tail}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.is_success:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s ({last}):\n{tail}")


def stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)


@contextlib.contextmanager
def running(
    name: str,
    command: list[str],
    *,
    ready_url: str,
    log: Path,
    env: dict | None = None,
    cwd: Path | None = None,
    timeout_s: float = 120.0,
    http_port: int | None = None,
    grpc_port: int | None = None,
) -> Iterator[Server]:
    """Run ``command`` in its own process group until the block ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # own group: stop() reaches uvicorn/mlserver workers too
        )
        try:
            wait_http_ok(ready_url, timeout_s=timeout_s, process=process, log=log)
            yield Server(name, process.pid, log, http_port, grpc_port)
        finally:
            stop(process)


def driftloop_predictor(
    name: str,
    model_name: str,
    *,
    log: Path,
    env: dict[str, str] | None = None,
    flags: Sequence[str] = (),
    timeout_s: float = 120.0,
) -> contextlib.AbstractContextManager[Server]:
    """driftloop's predictor (``bench.driftloop_server``) serving ``model_name`` on free
    loopback ports until the block ends; ``env`` is added to :func:`server_env`,
    ``flags`` go to ``bench.driftloop_server`` (``--off``, ``--max-batch-size 1`` ...)."""
    http_port, grpc_port = free_ports(2)
    return running(
        name,
        [
            sys.executable,
            "-m",
            "bench.driftloop_server",
            "--model",
            model_name,
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            *flags,
        ],
        ready_url=f"http://127.0.0.1:{http_port}/v2/models/{model_name}/ready",
        log=log,
        env=server_env(env),
        timeout_s=timeout_s,
        http_port=http_port,
        grpc_port=grpc_port,
    )
