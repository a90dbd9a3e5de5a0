"""A real PayloadLogger sending CloudEvents batches to the real monitor over a socket."""

from __future__ import annotations

import json

import httpx
import pytest

from driftloop.monitor.service import MonitorService
from driftloop.serving import metrics as serving_metrics
from driftloop.serving.cloudevent_framing import (
    BATCH_HEADERS,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    batch_body,
    cloudevent,
)
from driftloop.serving.payload_logger import PayloadLogger
from driftloop.settings import Settings
from tests.integration.conftest_monitor import scrape, serving, value, wait_for

pytestmark = pytest.mark.integration
MODEL = "sentiment"


def logged(outcome: str) -> float:
    return serving_metrics.LOGGER_EVENTS.labels(outcome=outcome)._value.get()


def v2_pair(texts: int = 1, labels: int = 1) -> tuple[dict, dict]:
    request = {
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [texts], "data": ["t"] * texts}]
    }
    response = {
        "model_name": MODEL,
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [labels], "data": ["pos"] * labels}
        ],
    }
    return request, response


def monitor(home) -> MonitorService:  # noqa: ANN001
    return MonitorService(MODEL, Settings(home=home), watch=False)


def test_a_batch_from_the_logger_is_paired_event_by_event(home):
    service = monitor(home)
    sent_before, failed_before = logged("sent"), logged("failed")
    with serving(service) as url:
        logger = PayloadLogger(f"{url}/events", model_name=MODEL, backoff_s=0.01)
        for i in range(20):
            logger.log(f"req-{i}", *v2_pair())
        logger.log("mismatch", *v2_pair(texts=2, labels=1))  # found only when paired
        logger.start().close(timeout=20)
        found = wait_for(
            lambda: (m := scrape(url)) and value(m, "driftloop_events_total", type="paired") and m,
            10,
            "paired events",
        )
    assert value(found, "driftloop_events_total", type="request") == 21
    assert value(found, "driftloop_events_total", type="response") == 21
    assert value(found, "driftloop_events_total", type="paired") == 20
    assert value(found, "driftloop_events_total", type="invalid") == 1
    assert logged("sent") - sent_before == 41 and logged("failed") - failed_before == 1
    assert logger.batching  # the monitor takes batches


def test_a_bad_event_rejects_its_batch_by_index_and_the_good_ones_still_arrive(home):
    service = monitor(home)
    request, response = v2_pair()
    good = [
        cloudevent(
            event_type=kind,
            request_id="good-1",
            body=body,
            model_name=MODEL,
            namespace="ns",
            source="test",
        )
        for kind, body in (
            (REQUEST_TYPE, request),
            (RESPONSE_TYPE, response),
        )
    ]
    bad = cloudevent(
        event_type="com.example.other",
        request_id="bad-1",
        body=request,
        model_name=MODEL,
        namespace="ns",
        source="test",
    )
    with serving(service) as url, httpx.Client(base_url=url, timeout=10) as client:
        refused = client.post(
            "/", content=batch_body([good[0], bad, good[1]]), headers=BATCH_HEADERS
        )
        assert refused.status_code == 400
        assert refused.json()["invalid"][0]["index"] == 1
        assert "events[1]: attribute type must be" in refused.json()["detail"]
        nothing = scrape(url)
        assert value(nothing, "driftloop_events_total", type="request") is None  # none applied
        # the logger, refused a batch, sends each event alone: only the bad one is lost
        failed_before = logged("failed")
        logger = PayloadLogger(f"{url}/", model_name=MODEL, backoff_s=0.01)
        for event in (good[0], bad, good[1]):
            logger.enqueue(event)
        logger.start().close(timeout=20)
        after = scrape(url)
        status = client.get("/status").json()
    assert value(after, "driftloop_events_total", type="paired") == 1
    assert value(after, "driftloop_events_total", type="invalid") == 3  # 1 + batch 1 + alone 1
    assert logged("failed") - failed_before == 1
    assert logger.batching and status["pending"] == 0


def test_an_empty_or_malformed_batch_is_answered_plainly(home):
    with serving(monitor(home)) as url, httpx.Client(base_url=url, timeout=10) as client:
        empty = client.post("/events", content=b"[]", headers=BATCH_HEADERS)
        broken = client.post("/events", content=b'{"id": 1}', headers=BATCH_HEADERS)
    assert empty.status_code == 202 and empty.json()["accepted"] == 0
    assert broken.status_code == 400 and "JSON array" in json.dumps(broken.json())
