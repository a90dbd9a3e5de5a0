"""Payload logger: the CloudEvents KServe's agent sidecar sends, sent from the predictor.

Each predict call produces two CloudEvents 1.0: one of type
``org.kubeflow.serving.inference.request`` and one of type
``...inference.response``, both with id = the request id, so a monitor works
the same behind KServe's agent or behind this logger.

Inference never waits for the sink: ``log`` is a non-blocking put into a
bounded queue (full → dropped and counted). A sender thread takes what is
queued: after the first event it lets more gather for up to ``batch_wait_s``,
then one event goes alone in binary mode, exactly as KServe's agent sends it,
and more than one (up to ``batch_max``) go as one CloudEvents JSON batch. The
sender runs in the serving process, so every wake-up and every POST takes the
GIL from inference; one of each per batch instead of per event is what keeps
logging cheap under load. Failed sends are retried with exponential backoff;
``driftloop_logger_events_total{outcome}`` counts events, not POSTs.

A sink that refuses a batch as a whole (4xx) gets its events again one by one,
so one bad event never costs the others; if it then takes every one of them,
it does not understand batches and this logger stops batching.

With a monitor token (``token=``, else ``DRIFTLOOP_MONITOR_TOKEN``) every POST
carries ``Authorization: Bearer <token>``: the monitor refuses events from
other hosts without it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time

from driftloop.serving import metrics
from driftloop.serving.cloudevent_framing import (
    BATCH_HEADERS,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    LoggedEvent,
    batch_body,
    cloudevent,
)
from driftloop.serving.sink_connection import SinkAnswer, SinkConnection, SinkError

__all__ = ["REQUEST_TYPE", "RESPONSE_TYPE", "LoggedEvent", "PayloadLogger", "cloudevent"]

log = logging.getLogger(__name__)

_STOP = object()
MAX_ANSWER_BYTES = 64 * 1024  # larger answers are not read for per-event rejections


class PayloadLogger:
    def __init__(
        self,
        url: str,
        *,
        model_name: str,
        namespace: str = "default",
        source: str | None = None,
        endpoint: str = "default",
        queue_size: int = 10_000,
        max_retries: int = 3,
        backoff_s: float = 0.1,
        timeout_s: float = 2.0,
        senders: int = 1,
        batch_max: int = 64,
        batch_wait_s: float = 0.0,
        token: str | None = None,
    ) -> None:
        if batch_max < 1:
            raise ValueError(f"logger batch_max must be at least 1, got {batch_max}")
        if batch_wait_s < 0:
            raise ValueError(f"logger batch_wait_s must not be negative, got {batch_wait_s}")
        SinkConnection(url, timeout_s)  # a bad URL fails here, not in a sender thread
        self.url = url
        self.model_name = model_name
        self.namespace = namespace
        self.source = source or f"http://localhost/{model_name}-predictor"
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.batching = batch_max > 1
        token = token or os.environ.get("DRIFTLOOP_MONITOR_TOKEN") or None
        self._auth = {"authorization": f"Bearer {token}"} if token else {}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._senders = senders
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._outcomes = {
            name: metrics.LOGGER_EVENTS.labels(outcome=name)
            for name in ("sent", "failed", "dropped")
        }

    def start(self) -> PayloadLogger:
        if not self._threads:
            for index in range(self._senders):
                thread = threading.Thread(
                    target=self._run, name=f"driftloop-payload-logger-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return self

    def log(self, request_id: str, request_body, response_body) -> None:  # noqa: ANN001
        """Queue the request and response events of one predict call; never blocks."""
        for event_type, body in ((REQUEST_TYPE, request_body), (RESPONSE_TYPE, response_body)):
            event = cloudevent(
                event_type=event_type,
                request_id=request_id,
                body=body,
                model_name=self.model_name,
                namespace=self.namespace,
                source=self.source,
                endpoint=self.endpoint,
            )
            self.enqueue(event)

    def enqueue(self, event: LoggedEvent) -> bool:
        if self._closed.is_set():
            self._outcomes["dropped"].inc()
            return False
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._outcomes["dropped"].inc()
            return False
        metrics.LOGGER_QUEUE_DEPTH.set(self._queue.qsize())
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (bounded by ``timeout``), then stop the senders."""
        if self._closed.is_set():
            return
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline and self._threads:
            time.sleep(0.02)
        self._closed.set()
        for _ in self._threads:
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.1))

    # --- sender thread ------------------------------------------------------------
    def _run(self) -> None:
        connection = SinkConnection(self.url, self.timeout_s)
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    self._deliver(connection, batch)
                if stop:
                    return
        finally:
            connection.close()

    def _next_batch(self) -> tuple[list[LoggedEvent], bool]:
        """What to send next (waits for the first event), and whether to stop after it."""
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return [], self._closed.is_set()
        if first is _STOP:
            return [], True
        batch = [first]
        limit = self.batch_max if self.batching else 1
        if limit > 1 and self.batch_wait_s and self._queue.qsize() + 1 < limit:
            # A sleep, not a get() with a timeout: every put would wake a waiting
            # get, and each wake-up takes the GIL from inference. Sleeping lets a
            # batch gather at the cost of one wake-up and one POST per wait.
            self._closed.wait(self.batch_wait_s)
        while len(batch) < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        metrics.LOGGER_QUEUE_DEPTH.set(self._queue.qsize())
        return batch, False

    def _deliver(self, connection: SinkConnection, batch: list[LoggedEvent]) -> None:
        if len(batch) == 1:
            self._outcomes[self._send_alone(connection, batch[0])].inc()
            return
        answer = self._post(connection, batch_body(batch), BATCH_HEADERS)
        if answer is None:
            self._outcomes["failed"].inc(len(batch))
        elif 200 <= answer.status < 300:
            rejected = _rejected_in(answer, len(batch))
            self._outcomes["sent"].inc(len(batch) - rejected)
            self._outcomes["failed"].inc(rejected)
        else:
            self._resend_alone(connection, batch, answer.status)

    def _resend_alone(self, connection: SinkConnection, batch: list, status: int) -> None:
        log.info(
            "payload sink refused a batch of %d (HTTP %s): resending one by one", len(batch), status
        )
        outcomes = [self._send_alone(connection, event) for event in batch]
        for outcome in outcomes:
            self._outcomes[outcome].inc()
        if all(outcome == "sent" for outcome in outcomes):
            self.batching = False
            log.warning(
                "payload sink %s refused a CloudEvents batch (HTTP %s) but took each event "
                "alone: sending one event per POST from now on",
                self.url,
                status,
            )

    def _send_alone(self, connection: SinkConnection, event: LoggedEvent) -> str:
        answer = self._post(connection, event.body, event.headers)
        if answer is None:
            return "failed"
        if 200 <= answer.status < 300:
            return "sent"
        log.warning("payload sink refused event: HTTP %s", answer.status)
        return "failed"

    def _post(
        self, connection: SinkConnection, body: bytes, headers: dict[str, str]
    ) -> SinkAnswer | None:
        """The sink's final answer, or None once retries are spent (5xx, 429, no connection)."""
        if self._auth:
            headers = {**headers, **self._auth}
        for attempt in range(self.max_retries + 1):
            try:
                answer = connection.post(body, headers)
                if answer.status < 500 and answer.status != 429:
                    return answer
                log.debug("payload sink %s answered HTTP %s", self.url, answer.status)
            except SinkError as exc:
                log.debug("payload sink %s unreachable: %s", self.url, exc)
            if attempt < self.max_retries and not self._closed.is_set():
                time.sleep(self.backoff_s * 2**attempt)
        return None


def _rejected_in(answer: SinkAnswer, size: int) -> int:
    """Events of a batch the sink took as a whole but refused singly (listed in ``rejected``)."""
    if (
        not answer.content_type.startswith("application/json")
        or len(answer.body) > MAX_ANSWER_BYTES
    ):
        return 0
    try:
        rejected = json.loads(answer.body).get("rejected")
    except (ValueError, AttributeError):
        return 0
    return min(len(rejected), size) if isinstance(rejected, list) else 0
