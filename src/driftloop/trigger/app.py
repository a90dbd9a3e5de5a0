"""HTTP transport of the trigger: the Alertmanager webhook and read-only views.

``POST /alerts`` (also ``/``) takes an Alertmanager webhook payload v4;
``POST /retrain`` launches a run now (``{"model", "params"}``: blueprint
options for that run, recorded on the version; ``driftloop retrain``);
``GET /decisions`` and ``GET /runs`` show what the trigger did; ``/metrics``
is Prometheus text; ``/healthz`` is for the supervisor. With a token
configured every route but ``/healthz`` and ``/metrics`` needs
``Authorization: Bearer <token>`` (compared as bytes in constant time).
Webhook bodies are capped at :data:`MAX_WEBHOOK_BYTES`, counted as they
arrive; a body that is not JSON, nests too deeply or is too large is a 4xx.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from driftloop.security import BodyTooLarge, bearer_matches, read_body
from driftloop.settings import Settings
from driftloop.trigger.payload import WebhookPayload
from driftloop.trigger.service import TriggerService


class RetrainBody(BaseModel):
    """``POST /retrain``: which model, and blueprint options for this run only."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=200)
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


def describe_validation_error(errors: list[dict]) -> str:
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


# Alertmanager sends at most a few hundred alerts per group; 4 MiB is far beyond that.
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024


def create_app(
    settings: Settings, service: TriggerService | None = None, *, watch_interval_s: float = 1.0
) -> FastAPI:
    token = settings.trigger_token
    holder: dict[str, TriggerService] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder["service"] = service or TriggerService(settings)
        holder["service"].start_watcher(watch_interval_s)
        app.state.service = holder["service"]
        try:
            yield
        finally:
            holder["service"].close()

    app = FastAPI(title="driftloop trigger", lifespan=lifespan)

    def current() -> TriggerService:
        return holder["service"]

    def authorised(request: Request) -> None:
        if not token:
            return
        if not bearer_matches(request.headers.get("authorization"), token):
            current().metrics.webhooks_total.labels(code="401").inc()
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token in the Authorization header",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = describe_validation_error(exc.errors())
        return _rejected(message)

    def _rejected(message: str) -> JSONResponse:
        service_ = current()
        service_.reject(f"invalid webhook payload: {message}")
        service_.metrics.webhooks_total.labels(code="422").inc()
        return JSONResponse(
            status_code=422, content={"detail": f"invalid webhook payload: {message}"}
        )

    async def receive(request: Request) -> JSONResponse:
        try:
            raw = await read_body(request, MAX_WEBHOOK_BYTES)
        except BodyTooLarge:
            current().metrics.webhooks_total.labels(code="413").inc()
            return JSONResponse(
                status_code=413,
                content={"detail": f"webhook body over {MAX_WEBHOOK_BYTES} bytes"},
                headers={"Connection": "close"},
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _rejected("body: not valid JSON")
        except RecursionError:
            return _rejected("body: JSON nested too deeply")
        try:
            payload = WebhookPayload.model_validate(body)
        except ValidationError as exc:
            return _rejected(describe_validation_error(exc.errors()))
        decisions = await run_in_threadpool(current().handle, payload)
        current().metrics.webhooks_total.labels(code="200").inc()
        return JSONResponse({"decisions": [d.to_json() for d in decisions]})

    app.add_api_route(
        "/alerts", receive, methods=["POST"], dependencies=[Depends(authorised)], name="alerts"
    )
    app.add_api_route(
        "/", receive, methods=["POST"], dependencies=[Depends(authorised)], name="alerts-root"
    )

    @app.post("/retrain", dependencies=[Depends(authorised)], status_code=202)
    async def retrain(request: Request) -> JSONResponse:
        """Launch a retraining run now (``driftloop retrain``): ``{"model": NAME, "params":
        {option: value}}``; 202 launched, 404 unknown model, 409 busy, 422 a bad field."""
        try:
            body = json.loads(await read_body(request, MAX_WEBHOOK_BYTES))
            asked = RetrainBody.model_validate(body)
        except BodyTooLarge:
            return JSONResponse(status_code=413, content={"detail": "body too large"})
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else None
            detail = describe_validation_error(errors) if errors else "body: not valid JSON"
            return JSONResponse(status_code=422, content={"detail": detail})
        try:
            decision = await run_in_threadpool(current().retrain, asked.model, asked.params)
        except ValueError as exc:  # the blueprint refused a param: its message names it
            return JSONResponse(status_code=422, content={"detail": f"params: {exc}"})
        codes = {"launched": 202, "busy": 409}
        code = codes.get(decision.outcome, 404 if "not registered" in decision.reason else 503)
        return JSONResponse(status_code=code, content=decision.to_json())

    @app.get("/decisions", dependencies=[Depends(authorised)])
    def list_decisions(model: str | None = None, limit: int = Query(100, ge=1, le=1000)) -> dict:
        return {"decisions": [d.to_json() for d in current().ledger.decisions(model, limit)]}

    @app.get("/runs", dependencies=[Depends(authorised)])
    def list_runs(
        model: str | None = None,
        state: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict:
        current().refresh()
        return {"runs": [r.to_json() for r in current().ledger.runs(model, state, limit)]}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(current().metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "launcher": current().launcher.name}

    return app
