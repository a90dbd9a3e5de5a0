"""Payload logger: KServe-agent CloudEvents, delivery to a loopback sink, drops, failures."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftloop.serving import metrics
from driftloop.serving.payload_logger import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    PayloadLogger,
    cloudevent,
)
from tests.conftest import free_port


def outcome(name: str) -> float:
    return metrics.LOGGER_EVENTS.labels(outcome=name)._value.get()


class Sink:
    """A loopback HTTP server recording what it receives; can fail the first N posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["content-length"]))
                if sink.fail_first > 0:
                    sink.fail_first -= 1
                    self.send_response(503)
                else:
                    sink.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.server.shutdown()
        self.server.server_close()


def test_cloudevent_binary_mode_headers():
    event = cloudevent(
        event_type=REQUEST_TYPE,
        request_id="r1",
        body={"instances": ["x"]},
        model_name="sentiment",
        namespace="ns",
        source="http://p",
    )
    assert event.headers == {
        "ce-specversion": "1.0",
        "ce-id": "r1",
        "ce-type": "org.kubeflow.serving.inference.request",
        "ce-source": "http://p",
        "ce-inferenceservicename": "sentiment",
        "ce-namespace": "ns",
        "ce-component": "predictor",
        "ce-endpoint": "default",
        "content-type": "application/json",
    }
    assert json.loads(event.body) == {"instances": ["x"]}


@pytest.mark.integration
def test_events_reach_a_sink_in_pairs():
    sent_before = outcome("sent")
    with Sink(fail_first=1) as sink:
        logger = PayloadLogger(sink.url, model_name="sentiment", backoff_s=0.01).start()
        for i in range(5):
            logger.log(f"req-{i}", {"instances": [f"t{i}"]}, {"predictions": [i]})
        logger.close(timeout=10)
    assert len(sink.events) == 10  # the 503 was retried
    by_id: dict[str, set[str]] = {}
    for headers, body in sink.events:
        by_id.setdefault(headers["ce-id"], set()).add(headers["ce-type"])
        assert headers["ce-specversion"] == "1.0" and headers["content-type"] == "application/json"
        json.loads(body)
    assert by_id == {f"req-{i}": {REQUEST_TYPE, RESPONSE_TYPE} for i in range(5)}
    assert outcome("sent") - sent_before == 10


@pytest.mark.integration
def test_dead_sink_counts_failures_and_full_queue_drops_without_blocking():
    failed_before, dropped_before = outcome("failed"), outcome("dropped")
    dead = f"http://127.0.0.1:{free_port()}/"
    logger = PayloadLogger(
        dead, model_name="m", queue_size=4, max_retries=2, backoff_s=0.01
    ).start()
    started = time.perf_counter()
    for i in range(50):
        logger.log(f"r{i}", {"instances": ["x"]}, {"predictions": []})
    assert time.perf_counter() - started < 0.5  # never waits for the sink
    logger.close(timeout=10)
    assert outcome("dropped") - dropped_before > 0
    assert outcome("failed") - failed_before > 0
    assert (outcome("dropped") - dropped_before) + (outcome("failed") - failed_before) == 100
