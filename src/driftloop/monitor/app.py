"""HTTP transport of the monitor: CloudEvents in, Prometheus text out.

``POST /`` and ``POST /events`` take the payload logger's CloudEvents (binary
mode, as KServe's agent sends them; structured mode; or a CloudEvents JSON
batch, ``application/cloudevents-batch+json``, as driftloop's logger sends
several queued events); ``GET /metrics`` is Prometheus text;
``GET /status`` shows the watched version and the last windows;
``GET /healthz`` is for the supervisor and the kubelet.

The intake is authenticated: with ``settings.monitor_token`` set, ``POST``
needs ``Authorization: Bearer <token>`` (driftloop's payload logger sends it);
without one, only loopback clients may post (KServe's agent and driftloop's
logger reach a sidecar monitor on localhost). Bodies are capped at
:data:`MAX_EVENT_BYTES`, counted as they arrive (chunked bodies included).

An event is answered once it is validated and paired (a request and response
whose declared instance counts differ is a 400); decoding it with the served
version's codec happens later on the engine's worker, and what only that finds
is counted as an invalid event and logged. :class:`IntakeFront` is the one
implementation of all this; ``driftloop monitor`` serves it with
:mod:`driftloop.monitor.http_server`, and :func:`create_app` wraps it as an ASGI app.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from driftloop.monitor.batch_intake import handle_batch
from driftloop.monitor.events import is_batch
from driftloop.monitor.service import IntakeResult, MonitorService
from driftloop.security import bearer_matches, is_loopback_client

MAX_EVENT_BYTES = 32 * 1024 * 1024
INTAKE_PATHS = ("/", "/events")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class IntakeFront:
    """What an event POST gets, whatever server carries it: who may post, the body cap,
    validation and pairing (``MonitorService.handle``), the answer as JSON bytes."""

    def __init__(self, service: MonitorService) -> None:
        self.service = service
        self._token = getattr(service.settings, "monitor_token", None)
        self._loopback: dict[str, bool] = {}  # client host -> loopback? (parsing costs)

    def refusal(self, client_host: str | None, headers: Mapping[str, str]) -> IntakeResult | None:
        if self._token:
            if bearer_matches(headers.get("authorization"), self._token):
                return None
            detail = "missing or wrong bearer token in the Authorization header"
        else:
            loopback = self._loopback.get(client_host) if client_host else False
            if loopback is None:
                loopback = self._loopback[client_host] = is_loopback_client(client_host)
            if loopback:
                return None
            detail = (
                "the monitor takes events from loopback clients only; set "
                "DRIFTLOOP_MONITOR_TOKEN (on the monitor and the payload logger) for others"
            )
        service = self.service
        service.metrics.event(service.model_name, service.engine.version, "unauthorised")
        return IntakeResult(401, {"detail": detail})

    def too_large(self) -> IntakeResult:
        return IntakeResult(413, {"detail": f"event body over {max_event_bytes()} bytes"})

    def handle(self, headers: Mapping[str, str], body: bytes) -> IntakeResult:
        service = self.service
        try:
            if is_batch(headers.get("content-type")):
                return handle_batch(service, body)
            return service.handle(headers, body)
        except RecursionError:  # JSON nested deeper than anything an inference sends
            service.metrics.event(service.model_name, service.engine.version, "invalid")
            return IntakeResult(400, {"detail": "invalid CloudEvent: JSON nested too deeply"})


def max_event_bytes() -> int:
    return MAX_EVENT_BYTES  # read at call time: tests lower it


# one encoder for every answer: json.dumps with separators builds a new one per call
_ANSWER_ENCODER = json.JSONEncoder(separators=(",", ":"))


def answer_body(result: IntakeResult) -> bytes:
    return _ANSWER_ENCODER.encode(result.detail).encode()


class MonitorApp:
    """The monitor as an ASGI app (tests, embedding): event intake on a short path, the
    rest FastAPI. ``driftloop monitor`` serves the same front with
    :mod:`driftloop.monitor.http_server` instead, which costs a fraction per event.

    ``GET /metrics``, ``/status``, ``/healthz`` and the lifespan (starting and stopping
    the service) go to the FastAPI app.
    """

    def __init__(self, service: MonitorService, api: FastAPI) -> None:
        self.service = service
        self.api = api
        self.state = api.state
        self.front = IntakeFront(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in INTAKE_PATHS:
            await self._intake(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    async def _intake(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        refused = self.front.refusal(client[0] if client else None, headers)
        if refused is not None:
            await _answer(send, refused, {"www-authenticate": "Bearer"})
            return
        body = await _read_capped(headers, receive, max_event_bytes())
        if body is None:
            await _answer(send, self.front.too_large(), {"connection": "close"})
            return
        await _answer(send, self.front.handle(headers, body))


async def _read_capped(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it is over ``limit`` bytes (declared or counted:
    a chunked or lying body stops being read at the first byte over the cap)."""
    declared = headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, result: IntakeResult, extra: dict[str, str] | None = None) -> None:
    body = answer_body(result)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(service: MonitorService) -> MonitorApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    api = FastAPI(title="driftloop monitor", lifespan=lifespan)
    api.state.service = service

    @api.get("/metrics")
    def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @api.get("/status")
    def status() -> dict:
        return service.status()

    @api.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "model": service.model_name}

    return MonitorApp(service, api)
