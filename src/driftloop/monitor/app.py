"""HTTP transport of the monitor: CloudEvents in, Prometheus text out.

``POST /`` and ``POST /events`` take the payload logger's CloudEvents (binary
mode, as KServe's agent sends them; structured mode; or a CloudEvents JSON
batch, ``application/cloudevents-batch+json``, as driftloop's logger sends
several queued events); ``GET /metrics`` is Prometheus text;
``GET /status`` shows the watched version and the last windows;
``GET /healthz`` is for the supervisor and the kubelet.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from driftloop.monitor.batch_intake import handle_batch
from driftloop.monitor.events import is_batch
from driftloop.monitor.service import MonitorService

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

    async def receive(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
            return JSONResponse(
                status_code=413, content={"detail": f"event body over {MAX_EVENT_BYTES} bytes"}
            )
        body = await request.body()
        if is_batch(request.headers.get("content-type")):
            result = handle_batch(service, body)
        else:
            result = service.handle(request.headers, body)
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
