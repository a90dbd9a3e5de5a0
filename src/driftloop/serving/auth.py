"""Optional shared-secret auth for predict, explain and feedback (REST and gRPC).

A request is let through when ``Authorization: Bearer <token>`` or
``X-API-Key: <token>`` matches ``settings.api_token`` (compared in constant
time). Health, readiness, liveness, metadata and ``/metrics`` stay open so
probes and Prometheus need no secret.

The model repository (``/v2/repository/...``, gRPC ``RepositoryModelLoad`` and
``RepositoryModelUnload``) needs the token when one is set; with no token it is
answered only for loopback clients (403 / PERMISSION_DENIED for anyone else).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping

import grpc
from grpc import aio

from driftloop.serving.safety import grpc_peer_host, is_loopback

PROTECTED_GRPC_METHODS = ("/ModelInfer", "/RepositoryModelLoad", "/RepositoryModelUnload")
REPOSITORY_GRPC_METHODS = ("/RepositoryModelLoad", "/RepositoryModelUnload")


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


def is_repository_path(path: str) -> bool:
    return path.startswith("/v2/repository")


def is_protected_path(path: str) -> bool:
    return (
        path.endswith(":predict")
        or path.endswith(":explain")
        or path.endswith("/explain")
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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.token:
            client = scope.get("client") or (None, None)
            if is_repository_path(scope["path"]) and not is_loopback(client[0]):
                await _deny(
                    send,
                    403,
                    "the model repository API is open only to loopback clients when no "
                    "DRIFTLOOP_API_TOKEN is set",
                )
                return
            await self.app(scope, receive, send)
            return
        if not is_protected_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if token_matches(self.token, headers):
            await self.app(scope, receive, send)
            return
        await _deny(
            send,
            401,
            "missing or invalid token: send 'Authorization: Bearer <token>' "
            "or 'X-API-Key: <token>'",
        )


async def _deny(send, status: int, message: str) -> None:  # noqa: ANN001 - ASGI send
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GrpcAuthInterceptor(aio.ServerInterceptor):
    """Rejects inference and repository calls without the token with UNAUTHENTICATED."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001
        method = handler_call_details.method or ""
        if not self.token and method.endswith(REPOSITORY_GRPC_METHODS):
            return _loopback_only(await continuation(handler_call_details))
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


def _loopback_only(handler):  # noqa: ANN001, ANN202 - a unary-unary gRPC method handler
    """``handler``, answering PERMISSION_DENIED to callers not on loopback."""
    if handler is None or handler.unary_unary is None:
        return handler
    inner = handler.unary_unary

    async def guarded(request, context):  # noqa: ANN001, ANN202 - gRPC handler
        if not is_loopback(grpc_peer_host(context.peer())):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "the model repository API is open only to loopback clients when no "
                "DRIFTLOOP_API_TOKEN is set",
            )
        return await inner(request, context)

    return grpc.unary_unary_rpc_method_handler(
        guarded,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
