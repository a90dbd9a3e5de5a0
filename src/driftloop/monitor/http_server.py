"""The monitor's own HTTP server: one asyncio protocol, httptools' parser, no ASGI.

At the payload logger's event rates the HTTP layer is most of what intake
costs. Through uvicorn and FastAPI an event cost several times a bare
asyncio sink's per-event CPU before the monitor did anything with it (a task,
a request-response cycle object and two socket writes per answer, plus the
framework's middleware and routing). This server parses with the same C
parser uvicorn uses, answers each request inside the callback that completed
it, in one write, and serves only what the monitor serves:

- ``POST /`` and ``POST /events``: the intake (:class:`~driftloop.monitor.app.IntakeFront`,
  the same checks, caps and answers as the ASGI app);
- ``GET /metrics`` (Prometheus text), ``GET /status``, ``GET /healthz``;
- anything else: 404 or 405.

Requests are handled one after another on the event loop (intake only
validates, pairs and queues; decoding and detection run on the engine's
worker), so a stop never finds a request half answered: on SIGTERM or SIGINT
the server stops listening, closes its connections and closes the service
(which tests what is queued, see ``DriftEngine.close``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import threading

import httptools
from prometheus_client import CONTENT_TYPE_LATEST

from driftloop.monitor.app import INTAKE_PATHS, IntakeFront, answer_body, max_event_bytes
from driftloop.monitor.service import MonitorService

log = logging.getLogger(__name__)

JSON = b"application/json"
REASONS = {
    200: b"OK",
    202: b"Accepted",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Content Too Large",
    500: b"Internal Server Error",
}
GET_PATHS = ("/metrics", "/status", "/healthz")
IDLE_TIMEOUT_S = 75.0  # a keep-alive connection with nothing to say is closed after this
CLOCK_TICK_S = 1.0  # how often the server's coarse clock (read per request) advances
# The headers anything behind the server reads (the intake's CloudEvent attributes, its
# content type and body cap, the bearer token). The payload logger sends a dozen; decoding
# and storing the rest cost the intake more per event than pairing it did.
KEPT_HEADERS = {
    name.encode(): name
    for name in (
        "content-type",
        "content-length",
        "authorization",
        "ce-specversion",
        "ce-id",
        "ce-type",
        "ce-inferenceservicename",
    )
}
INTAKE_URLS = frozenset(path.encode() for path in INTAKE_PATHS)


class _Connection(asyncio.Protocol):
    """One client connection: parse requests as bytes arrive, answer each when complete."""

    def __init__(self, server: MonitorServer) -> None:
        self.server = server
        self.front = server.front
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client_host: str | None = None
        self._closing = False
        self._reset()
        self._idle: asyncio.TimerHandle | None = None
        self._active = 0.0  # loop time of the last bytes received

    # --- asyncio.Protocol -------------------------------------------------------
    def connection_made(self, transport) -> None:  # noqa: ANN001 - asyncio's transport
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.client_host = peer[0] if isinstance(peer, tuple) and peer else None
        self.server.connections.add(self)
        self._active = self.server.clock
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self._closing:
            return
        self._active = self.server.clock  # the idle timer reads it when it fires
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._respond(400, JSON, b'{"detail":"protocol upgrades are not served"}', close=True)
        except httptools.HttpParserError as exc:
            detail = json.dumps({"detail": f"malformed HTTP request: {exc}"}).encode()
            self._respond(400, JSON, detail, close=True)

    # --- httptools callbacks ------------------------------------------------------
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = KEPT_HEADERS.get(name.lower())
        if key is not None:
            self._headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._method = self.parser.get_method()
        declared = self._headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > max_event_bytes():
            self._refuse_too_large()

    def on_body(self, body: bytes) -> None:
        if self._closing:
            return
        self._size += len(body)
        if self._size > max_event_bytes():  # chunked or lying: stop at the first byte over
            self._refuse_too_large()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closing:
            return
        url = self._url
        if b"?" in url:
            url = url.split(b"?", 1)[0]
        try:
            status, content_type, body, extra = self._route(self._method, url)
        except Exception:  # a bug must cost one answer, not the connection's next requests
            log.exception(
                "monitor: %s %s failed", self._method.decode("latin-1"), url.decode("latin-1")
            )
            status, content_type, body, extra = 500, JSON, b'{"detail":"internal error"}', b""
        self._respond(
            status, content_type, body, close=not self.parser.should_keep_alive(), extra=extra
        )

    # --- requests -----------------------------------------------------------------
    def _route(self, method: bytes, url: bytes) -> tuple[int, bytes, bytes, bytes]:
        if url in INTAKE_URLS:
            if method != b"POST":
                return 405, JSON, b'{"detail":"POST events here"}', b"allow: POST\r\n"
            refused = self.front.refusal(self.client_host, self._headers)
            if refused is not None:
                return 401, JSON, answer_body(refused), b"www-authenticate: Bearer\r\n"
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            result = self.front.handle(self._headers, body)
            return result.status, JSON, answer_body(result), b""
        path = url.decode("latin-1")
        if path in GET_PATHS:
            if method not in (b"GET", b"HEAD"):
                return 405, JSON, b'{"detail":"GET only"}', b"allow: GET\r\n"
            service = self.server.service
            if path == "/metrics":
                return 200, CONTENT_TYPE_LATEST.encode(), service.metrics.render(), b""
            if path == "/status":
                return 200, JSON, json.dumps(service.status()).encode(), b""
            return (
                200,
                JSON,
                json.dumps({"status": "ok", "model": service.model_name}).encode(),
                b"",
            )
        return 404, JSON, b'{"detail":"Not Found"}', b""

    def _refuse_too_large(self) -> None:
        self._respond(413, JSON, answer_body(self.front.too_large()), close=True)

    def _respond(
        self, status: int, content_type: bytes, body: bytes, *, close: bool, extra: bytes = b""
    ) -> None:
        transport = self.transport
        if transport is None:
            return
        head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
            status,
            REASONS.get(status, b"Unknown"),
            content_type,
            len(body),
            extra,
            b"connection: close\r\n" if close else b"",
        )
        transport.write(head + (b"" if self._method == b"HEAD" else body))
        if close:
            self._closing = True
            transport.close()

    def _reset(self) -> None:
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._method = b""

    def _arm_idle_timer(self, delay: float = IDLE_TIMEOUT_S) -> None:
        """One timer per idle period, not per request (a timer handle made and cancelled
        for each event cost intake more than parsing its headers): when it fires it closes
        the connection only if nothing arrived since, else it waits out the rest."""
        loop = self.server.loop
        if loop is not None and not self._closing:
            self._idle = loop.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        quiet = self.server.clock - self._active
        if quiet >= IDLE_TIMEOUT_S - CLOCK_TICK_S:
            self.close()
        else:
            self._arm_idle_timer(IDLE_TIMEOUT_S - quiet)

    def close(self) -> None:
        if self.transport is not None:
            self._closing = True
            self.transport.close()


class MonitorServer:
    """Serve one :class:`MonitorService` on ``host:port`` until stopped."""

    def __init__(self, service: MonitorService, host: str, port: int) -> None:
        self.service = service
        self.front = IntakeFront(service)
        self.host = host
        self.port = port
        self.connections: set[_Connection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clock = 0.0  # the loop's time, to CLOCK_TICK_S: what connections stamp activity with
        self._ticking: asyncio.TimerHandle | None = None
        self.started = threading.Event()
        self._stop: asyncio.Event | None = None

    def run(self, *, handle_signals: bool = False) -> None:
        """Start the service, serve until SIGTERM/SIGINT (or :meth:`stop`), close the service."""
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:  # the plain asyncio loop serves too, a little slower
            runner = asyncio.Runner()
        with runner:
            runner.run(self.serve(handle_signals=handle_signals))

    async def serve(self, *, handle_signals: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(signum, self._stop.set)
        self._tick()
        self.service.start()
        gc.freeze()  # the imported libraries are long-lived (see MonitorService.refresh_champion)
        try:
            server = await self.loop.create_server(
                lambda: _Connection(self), self.host, self.port, reuse_address=True
            )
            log.info(
                "%s: monitor listening on %s:%d", self.service.model_name, self.host, self.port
            )
            self.started.set()
            try:
                await self._stop.wait()
            finally:
                server.close()
                for connection in list(self.connections):
                    connection.close()
                if self._ticking is not None:
                    self._ticking.cancel()
                await server.wait_closed()
        finally:
            await self.loop.run_in_executor(None, self.service.close)

    def _tick(self) -> None:
        assert self.loop is not None
        self.clock = self.loop.time()
        self._ticking = self.loop.call_later(CLOCK_TICK_S, self._tick)

    def stop(self) -> None:
        """Ask a running server to stop (from any thread)."""
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
