"""The real monitor server over a socket, with windows tested in its detection child process.

The featuriser and detectors are scripted (real ones are tested in
test_drift_acceptance / test_drift_in_domain): each result carries the id of the
process that computed it, so the test sees detection leave the intake's process.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from driftloop.blueprints.codec import Batch
from driftloop.monitor.detectors import DetectorResult
from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from tests.integration.conftest_monitor import scrape, serving, value, wait_for
from tests.unit.conftest_monitor import ce_headers

pytestmark = pytest.mark.integration
MODEL = "sentiment"
WINDOW = 20


class TextsCodec:
    def decode_v1(self, instances: list) -> Batch:
        return Batch(model_input=[str(t) for t in instances], summaries=list(instances))


class LengthFeatures:
    def knows(self, output: dict) -> bool:
        return output.get("label") in ("pos", "neg")

    def transform(self, model_input, outputs) -> dict:  # noqa: ANN001
        return {"length": np.array([len(t) for t in model_input], dtype=float)}


class PidDetector:
    """Flags windows of long texts; its score is the id of the process it ran in."""

    def run(self, features: dict) -> list[DetectorResult]:
        drifted = bool(features["length"].mean() > 20)
        return [DetectorResult("len", "ks", "length", drifted, float(os.getpid()), 0.5, 0.0)]


@dataclass
class Bundle:
    featurizer: LengthFeatures
    detectors: PidDetector
    codec: TextsCodec


def post_pairs(client: httpx.Client, texts: list[str], prefix: str) -> None:
    for index, text in enumerate(texts):
        event_id = f"{prefix}-{index}"
        request = client.post(
            "/events",
            content=json.dumps({"instances": [text]}),
            headers=ce_headers("request", event_id),
        )
        response = client.post(
            "/events",
            content=json.dumps({"predictions": [{"label": "pos"}]}),
            headers=ce_headers("response", event_id),
        )
        assert request.status_code == 202 and response.status_code == 202, response.text


@pytest.mark.slow  # the detection process is spawned and imports the monitor: ~10 s on 2 cores
def test_windows_are_tested_in_the_child_process_and_none_dropped(home):
    settings = Settings(home=home, monitor_window=WINDOW)
    service = MonitorService(MODEL, settings, watch=False, detection_process=True)
    service.use_reference("1", Bundle(LengthFeatures(), PidDetector(), TextsCodec()))
    with serving(service) as url, httpx.Client(base_url=url, timeout=30) as client:
        wait_for(lambda: client.get("/status").json()["detection_ready"], 120, "the child")
        post_pairs(client, ["short"] * WINDOW * 3, "calm")
        post_pairs(client, ["a much longer text than before"] * WINDOW, "long")
        wait_for(lambda: len(service.engine.reports) >= 4, 60, "four windows")
        metrics = scrape(url)
        status = client.get("/status").json()
        child = service.engine._evaluator.pid  # noqa: SLF001 - which process detection ran in
    reports = service.engine.reports
    assert [r.drift for r in reports] == [False, False, False, True]
    assert {int(r.results[0].score) for r in reports} == {child}
    assert child != os.getpid()
    assert value(metrics, "driftloop_monitor_windows_total", version="1") == 4
    assert value(metrics, "driftloop_monitor_windows_dropped_total") in (None, 0)
    assert value(metrics, "driftloop_events_total", type="paired") == WINDOW * 4
    assert status["backlog"] == 0 and status["last_windows"][-1]["drift"] is True


def test_the_server_answers_what_it_does_not_serve_plainly(home):
    service = MonitorService(MODEL, Settings(home=home), watch=False)
    with serving(service) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/nowhere").status_code == 404
        assert client.get("/events").status_code == 405
        assert client.post("/metrics").status_code == 405
        assert client.get("/healthz").json() == {"status": "ok", "model": MODEL}
        # several requests on one keep-alive connection, each answered in order
        answers = [
            client.post(
                "/events",
                content=json.dumps({"instances": ["t"]}),
                headers=ce_headers("request", f"k{i}"),
            ).json()["id"]
            for i in range(5)
        ]
    assert answers == [f"k{i}" for i in range(5)]
