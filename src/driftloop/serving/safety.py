"""Safe defaults of the predictor: bind address, request-body limit, log hygiene.

- :func:`check_bind`: a non-loopback bind without ``DRIFTLOOP_API_TOKEN`` refuses to
  start unless ``--insecure`` (``DRIFTLOOP_INSECURE``) says so explicitly.
- :class:`BodySizeLimitMiddleware`: ASGI middleware that answers 413 as soon as a
  request body (declared by Content-Length, or counted while it streams in, e.g.
  chunked) exceeds ``max_body_bytes`` -- nothing buffers a body above the limit.
- :func:`install_log_escaping`: control characters (``\\r``, ``\\n``, ...) in the
  messages and arguments of driftloop's, KServe's and uvicorn's log records are
  escaped, so a URL or request id cannot forge a log line. It uses the public
  ``logging.setLogRecordFactory`` hook, which survives KServe and uvicorn
  (re)configuring handlers and formatters.
- :func:`client_error_handlers`: one-line log (no traceback) for KServe's
  client errors (400/404/409/503), replacing handlers that log a full traceback.
- :class:`GrpcClientErrorInterceptor`: the same for gRPC: KServe's status mapping
  (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, ...) with one escaped log line per
  client error instead of KServe's traceback, whose text (the exception message
  with a client's model name or tensor name in it) is not escaped.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus

import grpc
from fastapi.responses import JSONResponse
from kserve.errors import (
    InferenceError,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ServerNotLive,
    ServerNotReady,
    UnsupportedProtocol,
)
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor

from driftloop.serving.repository import RepositoryChangeRefused

log = logging.getLogger(__name__)


class UnsafeBindError(ValueError):
    """A non-loopback bind with no token and no explicit --insecure."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, insecure: bool) -> None:
    if is_loopback(host) or token or insecure:
        return
    raise UnsafeBindError(
        f"refusing to serve on {host} without DRIFTLOOP_API_TOKEN: set the token, "
        "bind 127.0.0.1 (--host), or pass --insecure to serve open"
    )


def grpc_address(host: str, port: int) -> str:
    return f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"


def grpc_peer_host(peer: str | None) -> str | None:
    """The address in a gRPC peer string ("ipv4:127.0.0.1:5", "ipv6:[::1]:5")."""
    if not peer:
        return None
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return None


# --- request body limit ----------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """413 for request bodies above ``max_bytes``, declared or streamed."""

    def __init__(self, app, max_bytes: int) -> None:  # noqa: ANN001 - ASGI app
        self.app = app
        self.max_bytes = max_bytes

    async def reject(self, send) -> None:  # noqa: ANN001
        body = json.dumps(
            {"error": f"request body larger than the limit of {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    # the rest of the body is not read: close rather than drain it
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self.reject(send)
                    return
        state = {"received": 0, "started": False, "rejected": False}

        async def guarded_send(message) -> None:  # noqa: ANN001
            if state["rejected"]:
                return  # the 413 went out already
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        async def counted_receive():  # noqa: ANN202
            if state["rejected"]:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    if not state["started"]:
                        await self.reject(send)
                    state["rejected"] = True
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not state["rejected"]:
                raise


# --- logs ----------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LOGGERS = ("driftloop", "kserve", "uvicorn", "access", "asgi_logger")


def escape_control(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``)."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(
        lambda m: _NAMED.get(
            m[0], f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}"
        ),
        text,
    )


def _safe_arg(value):  # noqa: ANN001, ANN202
    if isinstance(value, str):
        return escape_control(value)
    if value is None or isinstance(value, (bool, int, float, bytes)):
        return value
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - leave it to logging's own error handling
        return value
    return escape_control(text) if _CONTROL.search(text) else value


def _ours(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in _LOGGERS)


def sanitize_record(record: logging.LogRecord) -> logging.LogRecord:
    if isinstance(record.msg, str):
        record.msg = escape_control(record.msg)
    elif record.msg is not None and not isinstance(record.msg, (int, float)):
        record.msg = _safe_arg(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_safe_arg(arg) for arg in args)
    elif isinstance(args, Mapping):
        record.args = {key: _safe_arg(value) for key, value in args.items()}
    return record


def install_log_escaping() -> None:
    """Escape control characters in driftloop/KServe/uvicorn log records (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "driftloop_escaping", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        return sanitize_record(record) if _ours(record.name) else record

    factory.driftloop_escaping = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


CLIENT_ERRORS: dict[type[Exception], HTTPStatus] = {
    InvalidInput: HTTPStatus.BAD_REQUEST,
    UnsupportedProtocol: HTTPStatus.BAD_REQUEST,
    ModelNotFound: HTTPStatus.NOT_FOUND,
    ModelNotReady: HTTPStatus.SERVICE_UNAVAILABLE,
    ServerNotReady: HTTPStatus.SERVICE_UNAVAILABLE,  # e.g. after an unload: a probe, not a fault
    RepositoryChangeRefused: HTTPStatus.CONFLICT,  # load/unload with --workers > 1
}


async def client_error_handler(request, exc: Exception) -> JSONResponse:  # noqa: ANN001
    status = next(
        (code for kind, code in CLIENT_ERRORS.items() if isinstance(exc, kind)),
        HTTPStatus.BAD_REQUEST,
    )
    # one line, no traceback: a client error is the client's, not a server fault
    log.warning(
        "%s %s -> %d %s: %s",
        request.method,
        request.url.path,
        int(status),
        type(exc).__name__,
        exc,
    )
    return JSONResponse(status_code=int(status), content={"error": str(exc)})


def client_error_handlers() -> dict[type[Exception], object]:
    return {kind: client_error_handler for kind in CLIENT_ERRORS}


# KServe's own mapping, plus the repository refusal; order matters (first match wins)
GRPC_CLIENT_ERRORS: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (UnsupportedProtocol, grpc.StatusCode.INVALID_ARGUMENT),
    (InferenceError, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelNotFound, grpc.StatusCode.NOT_FOUND),
    (ModelNotReady, grpc.StatusCode.UNAVAILABLE),
    (ServerNotReady, grpc.StatusCode.UNAVAILABLE),
    (ServerNotLive, grpc.StatusCode.UNAVAILABLE),
    (RepositoryChangeRefused, grpc.StatusCode.FAILED_PRECONDITION),
)


class GrpcClientErrorInterceptor(ExceptionToStatusInterceptor):
    """KServe's exception-to-status interceptor; client errors log one line, no traceback.

    Anything else (a server fault: INTERNAL) keeps KServe's handling, traceback included.
    """

    async def handle_exception(self, ex, request_or_iterator, context, method_name):  # noqa: ANN001, ANN201
        status = next((code for kind, code in GRPC_CLIENT_ERRORS if isinstance(ex, kind)), None)
        if status is None:
            await super().handle_exception(ex, request_or_iterator, context, method_name)
            return
        log.warning("gRPC %s -> %s %s: %s", method_name, status.name, type(ex).__name__, ex)
        await context.abort(status, str(getattr(ex, "reason", None) or ex))
