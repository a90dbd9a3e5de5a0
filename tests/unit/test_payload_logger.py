"""Payload logger: KServe-agent CloudEvents, delivery to a loopback sink, drops, failures."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftloop.serving import metrics
from driftloop.serving.cloudevent_framing import BATCH_CONTENT_TYPE
from driftloop.serving.payload_logger import (
    REQUEST_TYPE,
    RESPONSE_TYPE,
    PayloadLogger,
    cloudevent,
)
from tests.conftest import free_port


def outcome(name: str) -> float:
    return metrics.LOGGER_EVENTS.labels(outcome=name)._value.get()


def as_binary(element: dict) -> tuple[dict, bytes]:
    """A structured event of a batch as the headers and body it has in binary mode."""
    headers = {
        f"ce-{name}": value
        for name, value in element.items()
        if name not in ("data", "data_base64", "datacontenttype")
    }
    headers |= {"content-type": element["datacontenttype"], "batched": "yes"}
    return headers, json.dumps(element["data"]).encode()


class Sink:
    """A loopback HTTP server recording what it receives; can fail the first N posts.

    ``batch_status`` is what it answers to a CloudEvents batch (415: it only
    takes binary mode); ``batch_answer`` is the JSON it answers a taken batch with.
    """

    def __init__(
        self, fail_first: int = 0, batch_status: int = 202, batch_answer: dict | None = None
    ) -> None:
        self.events: list[tuple[dict, bytes]] = []
        self.posts: list[str] = []  # content-type of every POST, in order
        self.fail_first = fail_first
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real sink

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                sink.posts.append(headers["content-type"])
                answer = b""
                if sink.fail_first > 0:
                    sink.fail_first -= 1
                    self.send_response(503)
                elif headers["content-type"] == BATCH_CONTENT_TYPE:
                    self.send_response(batch_status)
                    if batch_status < 300:
                        sink.events.extend(as_binary(e) for e in json.loads(body))
                        answer = json.dumps(batch_answer or {}).encode()
                        self.send_header("content-type", "application/json")
                else:
                    sink.events.append((headers, body))
                    self.send_response(200)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

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
        logger = PayloadLogger(
            sink.url, model_name="sentiment", backoff_s=0.01, batch_max=1
        ).start()
        for i in range(5):
            logger.log(f"req-{i}", {"instances": [f"t{i}"]}, {"predictions": [i]})
        logger.close(timeout=10)
    assert len(sink.events) == 10  # the 503 was retried
    assert set(sink.posts) == {"application/json"}  # batch_max=1: binary mode only, as KServe
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


def queued_then_started(logger: PayloadLogger, pairs: int) -> PayloadLogger:
    """Queue ``pairs`` predictions before the sender runs, so it finds them all waiting."""
    for i in range(pairs):
        logger.log(f"req-{i}", {"instances": [f"t{i}"]}, {"predictions": [i]})
    return logger.start()


@pytest.mark.integration
def test_queued_events_go_as_one_batch_and_are_counted_per_event():
    sent_before = outcome("sent")
    with Sink() as sink:
        logger = queued_then_started(PayloadLogger(sink.url, model_name="sentiment"), 5)
        logger.close(timeout=10)
    assert sink.posts == [BATCH_CONTENT_TYPE]
    ids = [(headers["ce-id"], headers["ce-type"]) for headers, _ in sink.events]
    assert ids == [(f"req-{i}", kind) for i in range(5) for kind in (REQUEST_TYPE, RESPONSE_TYPE)]
    assert outcome("sent") - sent_before == 10


@pytest.mark.integration
def test_batch_max_bounds_the_events_per_post():
    with Sink() as sink:
        logger = queued_then_started(
            PayloadLogger(sink.url, model_name="sentiment", batch_max=4), 5
        )
        logger.close(timeout=10)
    assert sink.posts == [BATCH_CONTENT_TYPE] * 3  # 4 + 4 + 2 events
    assert len(sink.events) == 10


@pytest.mark.integration
def test_a_sink_without_batches_gets_each_event_alone_and_batching_stops():
    sent_before, failed_before = outcome("sent"), outcome("failed")
    with Sink(batch_status=415) as sink:
        logger = queued_then_started(PayloadLogger(sink.url, model_name="m", backoff_s=0.01), 3)
        logger.close(timeout=10)
    assert sink.posts[0] == BATCH_CONTENT_TYPE
    assert sink.posts[1:] == ["application/json"] * 6
    assert len(sink.events) == 6 and not logger.batching
    assert outcome("sent") - sent_before == 6 and outcome("failed") == failed_before


@pytest.mark.integration
def test_events_a_sink_rejects_inside_a_taken_batch_count_as_failed():
    sent_before, failed_before = outcome("sent"), outcome("failed")
    answer = {"accepted": 3, "rejected": [{"index": 1, "detail": "bad"}]}
    with Sink(batch_answer=answer) as sink:
        logger = queued_then_started(PayloadLogger(sink.url, model_name="m"), 2)
        logger.close(timeout=10)
    assert sink.posts == [BATCH_CONTENT_TYPE]
    assert outcome("sent") - sent_before == 3 and outcome("failed") - failed_before == 1


def test_a_logger_url_that_is_not_http_is_refused_by_name():
    with pytest.raises(ValueError, match="logger_url"):
        PayloadLogger("ftp://127.0.0.1/", model_name="m")
    with pytest.raises(ValueError, match="batch_max"):
        PayloadLogger("http://127.0.0.1:1/", model_name="m", batch_max=0)


@pytest.mark.integration
def test_the_sender_lets_a_batch_gather_for_batch_wait_s():
    with Sink() as sink:
        logger = PayloadLogger(sink.url, model_name="m", batch_wait_s=0.5).start()
        for i in range(5):  # arrive one by one, after the sender is already waiting
            logger.log(f"req-{i}", {"instances": [f"t{i}"]}, {"predictions": [i]})
        logger.close(timeout=10)
    assert sink.posts == [BATCH_CONTENT_TYPE] and len(sink.events) == 10


def test_a_negative_batch_wait_is_refused_by_name():
    with pytest.raises(ValueError, match="batch_wait_s"):
        PayloadLogger("http://127.0.0.1:1/", model_name="m", batch_wait_s=-1)
