"""driftloop's additions to KServe's FastAPI app (installed in every REST process).

- ``POST /v2/models/{name}/infer`` replaces KServe's handler (same dataplane
  calls) so malformed JSON, non-UTF-8 bodies and schema errors answer 400 with
  a message, and the response keeps its ``parameters.labels`` list. Bodies and
  answers go through ``serving.wire``: JSON or the OIP binary tensor extension
  (``Inference-Header-Content-Length``) both ways, as KServe's own handler does.
- ``POST /v2/models/{name}/versions/{version}/infer`` is the same handler for the
  served version; any other version answers 404 naming it (KServe's own route
  would answer 501/500).
- ``POST /v1/models/{name}:predict`` replaces KServe's handler: the body is read as
  JSON ``{"instances": [...]}`` whatever its content type (driftloop takes no
  CloudEvent bodies, so ``ce-*`` headers are ignored, not half-decoded into a 500);
  bad JSON answers 400.
- ``POST /v1/models/{name}:explain`` replaces KServe's handler (same body reading as
  ``:predict``), and ``POST /v2/models/{name}/explain`` adds the v2 equivalent KServe
  0.21 lacks (the body of v2 infer, through ``serving.wire``); both answer JSON, see
  ``serving.explain``. A version its blueprint cannot explain answers 501 naming it.
- ``GET /v2/models/{name}`` adds the served version as ``versions``, and what it says of
  itself as ``parameters`` (version, hyperparameters, test metrics, tags:
  ``loader.version_metadata``) -- the seed's ``/model/info`` and ``/config``.
- the feedback routes, auth and request-metrics middleware, and the startup
  and shutdown hooks of the process's serving runtime.
- with ``docs`` (``driftloop serve --docs``): ``/docs`` and the typed
  ``/openapi.json`` of ``serving.docs``; without it nothing of that is installed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from kserve.errors import InvalidInput, ModelNotReady

from driftloop.serving import docs as api_docs
from driftloop.serving import feedback, runtime, wire
from driftloop.serving.auth import AuthMiddleware
from driftloop.serving.explain import ExplainUnavailable
from driftloop.serving.middleware import RequestMetricsMiddleware
from driftloop.settings import Settings

if TYPE_CHECKING:
    from kserve.protocol.dataplane import DataPlane

log = logging.getLogger(__name__)


def install(app: FastAPI, dataplane: DataPlane, settings: Settings, *, docs: bool = False) -> None:
    async def infer(model_name: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        headers = dict(request.headers)
        infer_request = wire.parse_rest_body(await request.body(), headers, model_name)
        response, response_headers = await dataplane.infer(
            model_name=model_name, request=infer_request, headers=headers
        )
        body, wire_headers = wire.encode_rest_response(response)
        response_headers.pop("content-length", None)
        response_headers.pop("content-type", None)
        media_type = wire_headers.pop("content-type")
        return Response(
            content=body, media_type=media_type, headers={**response_headers, **wire_headers}
        )

    async def versioned_infer(model_name: str, model_version: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        served = getattr(dataplane.get_model_from_registry(model_name), "served_version", None)
        if served is None or model_version != str(served):
            raise HTTPException(
                status_code=404,
                detail=f"model {model_name} has no version {model_version!r} here; "
                f"it serves version {served!r}",
            )
        return await infer(model_name, request)

    async def predict_v1(model_name: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        headers = dict(request.headers)
        payload = _v1_body(await request.body())
        response, response_headers = await dataplane.infer(
            model_name=model_name, request=payload, headers=headers
        )
        body, wire_headers = wire.encode_rest_response(response)
        response_headers.pop("content-length", None)
        response_headers.pop("content-type", None)
        media_type = wire_headers.pop("content-type")
        return Response(
            content=body, media_type=media_type, headers={**response_headers, **wire_headers}
        )

    async def explained(model_name: str, payload: Any, headers: dict[str, str]) -> Response:
        try:
            response, response_headers = await dataplane.explain(
                model_name=model_name, request=payload, headers=headers
            )
        except ExplainUnavailable as exc:
            log.warning("explain %s -> 501: %s", model_name, exc)
            return JSONResponse(status_code=501, content={"error": str(exc)})
        body, wire_headers = wire.encode_rest_response(response)
        # only the answer's own id: KServe's dataplane merges the request's headers in
        return Response(
            content=body,
            media_type=wire_headers["content-type"],
            headers={"x-request-id": response_headers.get("x-request-id", "")},
        )

    async def explain_v2(model_name: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        headers = dict(request.headers)
        infer_request = wire.parse_rest_body(await request.body(), headers, model_name)
        return await explained(model_name, infer_request, headers)

    async def explain_v1(model_name: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        return await explained(model_name, _v1_body(await request.body()), dict(request.headers))

    async def model_metadata(model_name: str) -> dict:
        metadata = await dataplane.model_metadata(model_name)
        model = dataplane.get_model_from_registry(model_name)
        version = getattr(model, "served_version", None)
        metadata["versions"] = [version] if version else []
        describe = getattr(model, "version_metadata", None)
        if describe is not None:  # version, hyperparameters, test metrics, tags
            metadata["parameters"] = describe()
        return metadata

    # infer reads the raw body: its typed body is documented (openapi_extra), not declared
    app.add_api_route(
        "/v2/models/{model_name}/infer",
        infer,
        methods=["POST"],
        **(api_docs.INFER_ROUTE if docs else {}),
    )
    app.add_api_route(
        "/v2/models/{model_name}/versions/{model_version}/infer",
        versioned_infer,
        methods=["POST"],
        include_in_schema=False,
    )
    app.add_api_route("/v1/models/{model_name}:predict", predict_v1, methods=["POST"])
    app.add_api_route("/v1/models/{model_name}:explain", explain_v1, methods=["POST"])
    app.add_api_route("/v2/models/{model_name}/explain", explain_v2, methods=["POST"])
    app.add_api_route(
        "/v2/models/{model_name}",
        model_metadata,
        methods=["GET"],
        **(api_docs.METADATA_ROUTE if docs else {}),
    )
    app.include_router(feedback.router)
    if docs:
        api_docs.install(app, token_configured=bool(settings.api_token))

    def start_runtime() -> None:
        models = [m for m in dataplane.model_registry.get_models().values() if hasattr(m, "reload")]
        runtime.install(settings).start(models)

    app.router.on_startup.append(start_runtime)
    app.router.on_shutdown.append(runtime.close_unless_server_process)


def _v1_body(raw: bytes) -> dict:
    """A v1 predict body: strict JSON (no NaN, no lone surrogates), an object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput('request body must be a JSON object with "instances"')
    return document


def add_middlewares(app: FastAPI, settings: Settings) -> None:
    # Added last = outermost: auth rejects before anything else runs; metrics see the 401s.
    app.add_middleware(AuthMiddleware, token=settings.api_token)
    app.add_middleware(RequestMetricsMiddleware)
