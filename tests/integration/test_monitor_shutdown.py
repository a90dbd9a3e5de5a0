"""`driftloop monitor` stops promptly and cleanly on SIGTERM.

SIGTERM is what `driftloop down` and a kubelet send. The monitor runs as a
real subprocess on a free loopback port. The first test
points it at a registry that accepts connections and never answers -- a hung
MLflow server -- so its registry poll is stuck in a request when the signal
comes; the second watches a real champion with a loaded drift reference.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.integration

MODEL = "sentiment"
ENTRY = "import sys; from driftloop.cli import main; sys.exit(main())"
PROMPT_EXIT_S = 5.0  # `driftloop down` sends SIGKILL after 15 s


@contextmanager
def hung_registry():
    """A loopback TCP server that accepts every connection and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        done.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


@contextmanager
def monitor_process(home: Path, env: dict[str, str]):
    port = free_port()
    log_path = home / f"monitor-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "monitor", MODEL, "--host", "127.0.0.1"]
            + ["--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DRIFTLOOP_RELOAD_INTERVAL_S": "0.5", **env},
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen, log_path: Path):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"monitor exited {process.returncode}:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log_path.read_text()}")
        time.sleep(0.2)


def answers(url: str, path: str = "/healthz") -> dict | None:
    try:
        response = httpx.get(f"{url}{path}", timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def stop_with_sigterm(process: subprocess.Popen) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=PROMPT_EXIT_S * 3)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the monitor was still running {PROMPT_EXIT_S * 3:.0f}s after SIGTERM")
    return time.monotonic() - started


def test_sigterm_stops_the_monitor_while_a_registry_poll_hangs(home):
    with hung_registry() as (registry_url, accepted):
        with monitor_process(home, {"MLFLOW_TRACKING_URI": registry_url}) as (
            process,
            url,
            log_path,
        ):
            wait_until(lambda: answers(url), 60, "/healthz", process, log_path)
            wait_until(lambda: accepted, 30, "the registry poll", process, log_path)

            elapsed = stop_with_sigterm(process)

    log = log_path.read_text()
    print(f"\nexit {process.returncode} {elapsed:.2f}s after SIGTERM (registry hung)")
    assert elapsed < PROMPT_EXIT_S, log
    assert process.returncode == 0, log
    assert "registry/store poll is still running; not waiting for it" in log
    assert f"{MODEL}: monitor stopped" in log
    assert "Traceback" not in log


@pytest.mark.slow  # registering a model and fitting its reference: ~20 s on 2 cores
def test_sigterm_stops_a_monitor_watching_a_champion_and_reports_what_it_dropped(home, tmp_path):
    import pandas as pd

    from driftloop.monitor.reference import fit_reference
    from driftloop.settings import Settings
    from tests.integration.conftest_serving import NEGATIVE, POSITIVE, register_text_model
    from tests.unit.conftest_monitor import ce_headers, v2_request

    settings = Settings(home=home)
    version = register_text_model(settings.resolved_tracking_uri, MODEL)
    from driftloop.lineage import TAG_BLUEPRINT
    from driftloop.registry import ModelRegistry

    # the reference is fitted as the version's blueprint says
    ModelRegistry(settings.resolved_tracking_uri).set_tags(
        MODEL, version, {TAG_BLUEPRINT: "sentiment"}
    )
    texts = [f"{text} {i}" for i in range(15) for text in POSITIVE + NEGATIVE]
    pd.DataFrame({"text": texts}).to_parquet(tmp_path / "reference.parquet")
    fit_reference(MODEL, version, tmp_path / "reference.parquet", settings)

    with monitor_process(home, {}) as (process, url, log_path):
        wait_until(
            lambda: (answers(url, "/status") or {}).get("reference_loaded"),
            90,
            "the champion's drift reference",
            process,
            log_path,
        )
        # a request half whose response never comes: pending when the stop arrives
        posted = httpx.post(
            f"{url}/events", content=v2_request(["great"]), headers=ce_headers("request", "r1")
        )
        assert posted.status_code == 202

        elapsed = stop_with_sigterm(process)

    log = log_path.read_text()
    print(f"\nexit {process.returncode} {elapsed:.2f}s after SIGTERM (reference loaded)")
    assert elapsed < PROMPT_EXIT_S, log
    assert process.returncode == 0, log
    assert f"{MODEL}: monitor stopped (1 unpaired events dropped)" in log
    assert "not waiting for it" not in log
    assert "Traceback" not in log
