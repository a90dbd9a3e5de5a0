"""One persistent HTTP/1.1 connection to the payload sink, for the logger's sender thread.

The sender runs inside the serving process and every microsecond it holds the
GIL is taken from inference: the standard library's ``http.client`` costs
about a quarter of httpx's CPU per POST on this machine (153 vs 612 us), and a
kept-alive connection saves the TCP handshake on every send.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

# what a keep-alive connection that the sink closed while idle raises on reuse
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class SinkError(OSError):
    """The sink could not be reached or broke the exchange off."""


@dataclass(frozen=True)
class SinkAnswer:
    status: int
    content_type: str
    body: bytes


class SinkConnection:
    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"logger_url must be an http(s) URL, got {url!r}")
        if parts.username or parts.password:
            raise ValueError("logger_url must not carry credentials")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> SinkAnswer:
        reused = self._connection is not None
        try:
            return self._exchange(body, headers)
        except _STALE as exc:
            if not reused:
                raise SinkError(_describe(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise SinkError(_describe(exc)) from exc
        # the sink dropped an idle keep-alive connection: one fresh try, not a failure
        try:
            return self._exchange(body, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise SinkError(_describe(exc)) from exc

    def _exchange(self, body: bytes, headers: dict[str, str]) -> SinkAnswer:
        connection = self._connection or self._open()
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            answer = SinkAnswer(
                response.status, response.getheader("content-type", ""), response.read()
            )
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._connection = kind(self._host, self._port, timeout=self._timeout_s)
        return self._connection


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
