"""Optional shared-secret auth for predict and feedback (REST and gRPC).

A request is let through when ``Authorization: Bearer <token>`` or
``X-API-Key: <token>`` matches ``settings.api_token`` (compared in constant
time). Health, readiness, liveness, metadata and ``/metrics`` stay open so
probes and Prometheus need no secret.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping

import grpc
from grpc import aio

PROTECTED_GRPC_METHODS = ("/ModelInfer", "/RepositoryModelLoad", "/RepositoryModelUnload")


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token in ``headers`` (keys lower-case), if any."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key else None


def token_matches(expected: str | None, headers: Mapping[str, str]) -> bool:
    if not expected:
        return True
    presented = presented_token(headers)
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def is_protected_path(path: str) -> bool:
    return (
        path.endswith(":predict")
        or path.endswith(":explain")
        or path.endswith("/infer")
        or path.startswith("/v1/feedback")
        or path.startswith("/v2/repository")
    )


class AuthMiddleware:
    """ASGI middleware answering 401 on protected paths without the right token."""

    def __init__(self, app, token: str | None) -> None:  # noqa: ANN001 - ASGI app
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http" or not self.token or not is_protected_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if token_matches(self.token, headers):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "missing or invalid token: send 'Authorization: Bearer <token>' "
                "or 'X-API-Key: <token>'"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class GrpcAuthInterceptor(aio.ServerInterceptor):
    """Rejects inference and repository calls without the token with UNAUTHENTICATED."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001
        method = handler_call_details.method or ""
        if not self.token or not method.endswith(PROTECTED_GRPC_METHODS):
            return await continuation(handler_call_details)
        metadata = {
            key.lower(): value
            for key, value in (handler_call_details.invocation_metadata or ())
            if isinstance(value, str)
        }
        if token_matches(self.token, metadata):
            return await continuation(handler_call_details)

        async def deny(request, context):  # noqa: ANN001 - gRPC handler
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid token")

        return grpc.unary_unary_rpc_method_handler(deny)
