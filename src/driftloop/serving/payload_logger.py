"""Payload logger: the CloudEvents KServe's agent sidecar sends, sent from the predictor.

Each predict call produces two CloudEvents 1.0 in *binary* HTTP mode (the
attributes in ``ce-*`` headers, the raw JSON as body): one of type
``org.kubeflow.serving.inference.request`` and one of type
``...inference.response``, both with ``ce-id`` = the request id, so a monitor
works the same behind KServe's agent or behind this logger.

Inference never waits for the sink: ``log`` is a non-blocking put into a
bounded queue (full → dropped and counted); sender threads retry with
exponential backoff and count what they finally could not deliver.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass

import httpx

from driftloop.serving import metrics

log = logging.getLogger(__name__)

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"

_STOP = object()


@dataclass(frozen=True)
class LoggedEvent:
    headers: dict[str, str]
    body: bytes


def cloudevent(
    *,
    event_type: str,
    request_id: str,
    body: dict | list | bytes,
    model_name: str,
    namespace: str,
    source: str,
    endpoint: str = "default",
    component: str = "predictor",
) -> LoggedEvent:
    """One binary-mode CloudEvent exactly as KServe's agent logger frames it."""
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "ce-specversion": "1.0",
        "ce-id": request_id,
        "ce-type": event_type,
        "ce-source": source,
        "ce-inferenceservicename": model_name,
        "ce-namespace": namespace,
        "ce-component": component,
        "ce-endpoint": endpoint,
        "content-type": "application/json",
    }
    return LoggedEvent(headers=headers, body=data)


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
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.namespace = namespace
        self.source = source or f"http://localhost/{model_name}-predictor"
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._senders = senders
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

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
            metrics.LOGGER_EVENTS.labels(outcome="dropped").inc()
            return False
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            metrics.LOGGER_EVENTS.labels(outcome="dropped").inc()
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

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                try:
                    event = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if self._closed.is_set():
                        return
                    continue
                if event is _STOP:
                    return
                metrics.LOGGER_QUEUE_DEPTH.set(self._queue.qsize())
                self._send(client, event)

    def _send(self, client: httpx.Client, event: LoggedEvent) -> None:
        for attempt in range(self.max_retries + 1):
            try:
                response = client.post(self.url, content=event.body, headers=event.headers)
                if response.status_code < 500 and response.status_code != 429:
                    outcome = "sent" if response.is_success else "failed"
                    if outcome == "failed":
                        log.warning("payload sink refused event: HTTP %s", response.status_code)
                    metrics.LOGGER_EVENTS.labels(outcome=outcome).inc()
                    return
            except httpx.HTTPError as exc:
                log.debug("payload sink %s unreachable: %s", self.url, exc)
            if attempt < self.max_retries and not self._closed.is_set():
                time.sleep(self.backoff_s * 2**attempt)
        metrics.LOGGER_EVENTS.labels(outcome="failed").inc()
