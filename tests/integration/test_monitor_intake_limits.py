"""The monitor as a real HTTP server against hostile bodies: caps hold for chunked bodies."""

from __future__ import annotations

import time

import httpx
import pytest

from driftloop.monitor.app import MAX_EVENT_BYTES
from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from tests.integration.conftest_monitor import serving
from tests.unit.conftest_monitor import ce_headers, v1_request

pytestmark = [pytest.mark.integration]


def test_chunked_50_mib_event_is_refused_fast_and_odd_bodies_are_4xx(home):
    service = MonitorService("sentiment", Settings(home=home), watch=False)
    sent = 0

    def chunks():
        nonlocal sent
        block = b" " * (1024 * 1024)
        for _ in range(50):  # 50 MiB, no Content-Length: Transfer-Encoding chunked
            sent += len(block)
            yield block

    with serving(service) as url, httpx.Client(base_url=url, timeout=30) as client:
        started = time.monotonic()
        try:
            response = client.post("/events", content=chunks(), headers=ce_headers("request", "x"))
            status = response.status_code
        except httpx.HTTPError:  # the server may close before the rest is sent
            status = 413
        elapsed = time.monotonic() - started
        assert status == 413
        assert elapsed < 10, f"took {elapsed:.1f}s"
        print(f"chunked 50 MiB: 413 after {elapsed:.2f}s, {sent >> 20} MiB offered")
        assert MAX_EVENT_BYTES == 32 * 1024 * 1024

        deep = b"[" * 100_000 + b"]" * 100_000
        odd = client.post("/events", content=deep, headers=ce_headers("request", "deep"))
        assert odd.status_code == 400
        # loopback, no token configured: the real client is accepted
        fine = client.post(
            "/events", content=v1_request(["ok"]), headers=ce_headers("request", "a")
        )
        assert fine.status_code == 202
