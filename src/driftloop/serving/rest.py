"""driftloop's additions to KServe's FastAPI app (installed in every REST process).

- ``POST /v2/models/{name}/infer`` replaces KServe's handler (same dataplane
  calls) so malformed JSON, non-UTF-8 bodies and schema errors answer 400/422
  with a message, and the response keeps its ``parameters.labels`` list.
- ``GET /v2/models/{name}`` adds the served version as ``versions``.
- the feedback routes, auth and request-metrics middleware, and the startup
  and shutdown hooks of the process's serving runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferRequest, InferResponse
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from pydantic import ValidationError

from driftloop.serving import feedback, runtime
from driftloop.serving.auth import AuthMiddleware
from driftloop.serving.middleware import RequestMetricsMiddleware
from driftloop.settings import Settings

if TYPE_CHECKING:
    from kserve.protocol.dataplane import DataPlane


def parse_v2_body(body: bytes, model_name: str) -> InferRequest:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"request body is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from exc
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInput('request body must be a JSON object with "inputs"')
    if "inputs" not in document:
        raise InvalidInput('missing "inputs": send [{"name": "text", "datatype": "BYTES", ...}]')
    try:
        request = InferenceRequest.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"invalid v2 inference request: {problems}") from exc
    return InferRequest.from_inference_request(request, model_name)


def install(app: FastAPI, dataplane: DataPlane, settings: Settings) -> None:
    async def infer(model_name: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        infer_request = parse_v2_body(await request.body(), model_name)
        headers = dict(request.headers)
        response, response_headers = await dataplane.infer(
            model_name=model_name, request=infer_request, headers=headers
        )
        if isinstance(response, InferResponse):
            response, _ = response.to_rest()
        response_headers.pop("content-length", None)
        response_headers.pop("content-type", None)
        return Response(
            content=orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
            headers=response_headers,
        )

    async def model_metadata(model_name: str) -> dict:
        metadata = await dataplane.model_metadata(model_name)
        model = dataplane.get_model_from_registry(model_name)
        version = getattr(model, "served_version", None)
        metadata["versions"] = [version] if version else []
        return metadata

    app.add_api_route("/v2/models/{model_name}/infer", infer, methods=["POST"])
    app.add_api_route("/v2/models/{model_name}", model_metadata, methods=["GET"])
    app.include_router(feedback.router)

    def start_runtime() -> None:
        models = [m for m in dataplane.model_registry.get_models().values() if hasattr(m, "reload")]
        runtime.install(settings).start(models)

    app.router.on_startup.append(start_runtime)
    app.router.on_shutdown.append(runtime.close_unless_server_process)


def add_middlewares(app: FastAPI, settings: Settings) -> None:
    # Added last = outermost: auth rejects before anything else runs; metrics see the 401s.
    app.add_middleware(AuthMiddleware, token=settings.api_token)
    app.add_middleware(RequestMetricsMiddleware)
