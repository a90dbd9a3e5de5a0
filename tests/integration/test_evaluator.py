"""The built-in evaluator over real HTTP: monitor /metrics in, webhooks out."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from driftloop.monitor.evaluator import fingerprint, run_evaluator
from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from tests.conftest import free_port
from tests.integration.conftest_monitor import serving, wait_for

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook receiver on loopback that answers 503 to its first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict] = []
        self.fail_first = fail_first
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.attempts += 1
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("authorization"),
                        "body": json.loads(body),
                    }
                )
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/alerts"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def test_evaluator_posts_firing_then_resolved_with_the_bearer_token(tmp_path):
    settings = Settings(home=tmp_path, trigger_token="t0ken", evaluator_interval_s=0.2)
    service = MonitorService("sentiment", settings, watch=False)
    # the monitor's verdict DriftDetected fires on: flagged windows in a row
    drift = service.metrics.drift_sustained.labels(model="sentiment", version="4")
    drift.set(0)
    service.metrics.feedback_since_champion.labels(model="sentiment", version="4").set(3)
    stop = threading.Event()
    with serving(service) as monitor_url, Receiver(fail_first=1) as receiver:
        evaluator = threading.Thread(
            target=run_evaluator,
            kwargs=dict(
                settings=settings,
                metrics_url=f"{monitor_url}/metrics",
                webhook_url=receiver.url,
                for_duration="1s",
                stop=stop,
            ),
            daemon=True,
        )
        evaluator.start()
        try:
            time.sleep(0.6)
            assert receiver.attempts == 0  # nothing is wrong yet
            drift.set(1)
            wait_for(lambda: receiver.received, what="the firing webhook (after one 503)")
            assert receiver.attempts == 2
            fired = receiver.received[0]
            assert fired["auth"] == "Bearer t0ken" and fired["path"] == "/alerts"
            body = fired["body"]
            assert body["version"] == "4" and body["status"] == "firing"
            (alert,) = body["alerts"]
            assert alert["labels"] == {
                "alertname": "DriftDetected",
                "model": "sentiment",
                "severity": "warning",
            }
            assert alert["generatorURL"] == f"{monitor_url}/metrics"
            time.sleep(0.6)
            assert len(receiver.received) == 1  # still firing, not repeated yet
            drift.set(0)
            wait_for(lambda: len(receiver.received) == 2, what="the resolved webhook")
            resolved = receiver.received[1]["body"]["alerts"][0]
            assert resolved["status"] == "resolved"
            assert resolved["fingerprint"] == alert["fingerprint"]
            assert resolved["startsAt"] == alert["startsAt"]
        finally:
            stop.set()
            evaluator.join(10)
    assert not evaluator.is_alive()


ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.mark.skipif(ALERTMANAGER is None, reason="Alertmanager binary not installed")
def test_fingerprints_match_alertmanagers(tmp_path):
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: void}\nreceivers: [{name: void}]\n")
    port = free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    label_sets = [
        {"alertname": "DriftDetected", "model": "sentiment", "severity": "warning"},
        {
            "alertname": "LiveScoreDrop",
            "model": "olist",
            "version": "12",
            "severity": "critical",
        },
    ]
    try:
        base = f"http://127.0.0.1:{port}/api/v2"
        wait_for(lambda: _ready(base), 30, "Alertmanager")
        response = httpx.post(
            f"{base}/alerts", json=[{"labels": labels} for labels in label_sets], timeout=10
        )
        assert response.status_code == 200, response.text
        alerts = wait_for(
            lambda: len(a := httpx.get(f"{base}/alerts", timeout=10).json()) == 2 and a, 10
        )
    finally:
        process.terminate()
        process.wait(10)
    theirs = {a["labels"]["alertname"]: a["fingerprint"] for a in alerts}
    ours = {labels["alertname"]: fingerprint(labels) for labels in label_sets}
    assert ours == theirs


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/status", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
