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
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from driftloop.monitor.batch_intake import handle_batch
from driftloop.monitor.events import is_batch
from driftloop.monitor.service import IntakeResult, MonitorService
from driftloop.security import BodyTooLarge, bearer_matches, is_loopback_client, read_body

MAX_EVENT_BYTES = 32 * 1024 * 1024


def create_app(service: MonitorService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    app = FastAPI(title="driftloop monitor", lifespan=lifespan)
    app.state.service = service

    token = getattr(service.settings, "monitor_token", None)

    def refusal(request: Request) -> JSONResponse | None:
        if token:
            if bearer_matches(request.headers.get("authorization"), token):
                return None
            detail = "missing or wrong bearer token in the Authorization header"
        elif is_loopback_client(request.client.host if request.client else None):
            return None
        else:
            detail = (
                "the monitor takes events from loopback clients only; set "
                "DRIFTLOOP_MONITOR_TOKEN (on the monitor and the payload logger) for others"
            )
        service.metrics.event(service.model_name, service.engine.version, "unauthorised")
        return JSONResponse(
            status_code=401, content={"detail": detail}, headers={"WWW-Authenticate": "Bearer"}
        )

    async def receive(request: Request) -> JSONResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        try:
            body = await read_body(request, MAX_EVENT_BYTES)
        except BodyTooLarge:
            return JSONResponse(
                status_code=413,
                content={"detail": f"event body over {MAX_EVENT_BYTES} bytes"},
                headers={"Connection": "close"},
            )
        try:
            if is_batch(request.headers.get("content-type")):
                result = handle_batch(service, body)
            else:
                result = service.handle(request.headers, body)
        except RecursionError:  # JSON nested deeper than anything an inference sends
            service.metrics.event(service.model_name, service.engine.version, "invalid")
            result = IntakeResult(400, {"detail": "invalid CloudEvent: JSON nested too deeply"})
        return JSONResponse(status_code=result.status, content=result.detail)

    app.add_api_route("/", receive, methods=["POST"], name="events-root")
    app.add_api_route("/events", receive, methods=["POST"], name="events")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/status")
    def status() -> dict:
        return service.status()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "model": service.model_name}

    return app
