"""Helpers for the monitor integration tests (imported explicitly, not a pytest conftest)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop.monitor.http_server import MonitorServer
from driftloop.monitor.service import MonitorService
from tests.conftest import free_port


@contextmanager
def serving(service: MonitorService):
    """The service behind the monitor's own HTTP server (what ``driftloop monitor`` runs),
    on a free loopback port, in a thread of this process."""
    port = free_port()
    server = MonitorServer(service, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name="monitor-under-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started.is_set():
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("monitor did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(30)


def scrape(url: str) -> dict[str, list[tuple[dict, float]]]:
    found: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(metrics, name: str, **labels) -> float | None:
    for sample_labels, sample_value in metrics.get(name, []):
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            return sample_value
    return None


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
