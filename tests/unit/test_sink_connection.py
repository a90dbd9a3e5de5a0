"""The logger's persistent connection: reuse, a sink that drops idle connections, dead sinks."""

from __future__ import annotations

import socket
import threading

import pytest

from driftloop.serving.sink_connection import SinkConnection, SinkError
from tests.conftest import free_port


class OneAnswerPerConnection:
    """Answers one HTTP/1.1 request per connection, then hangs up without saying so.

    That is what a sink's idle keep-alive timeout looks like to the client: the
    next request on the old connection finds it closed.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/events?x=1"
        self.connections = 0
        self.paths: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                self.paths.append(head.split(b" ")[1].decode())
                conn.sendall(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok")

    def close(self) -> None:
        self.listener.close()


@pytest.mark.integration
def test_a_connection_the_sink_dropped_is_reopened_without_a_failure():
    sink = OneAnswerPerConnection()
    connection = SinkConnection(sink.url, timeout_s=5)
    try:
        answers = [connection.post(b"{}", {"content-type": "application/json"}) for _ in range(3)]
    finally:
        connection.close()
        sink.close()
    assert [(a.status, a.body) for a in answers] == [(202, b"ok")] * 3
    assert sink.connections == 3 and sink.paths == ["/events?x=1"] * 3


@pytest.mark.integration
def test_a_dead_sink_raises_sink_error():
    connection = SinkConnection(f"http://127.0.0.1:{free_port()}/", timeout_s=2)
    with pytest.raises(SinkError, match="Connection"):
        connection.post(b"{}", {})


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8090", "ftp://127.0.0.1/", "http://user:secret@127.0.0.1/"]
)
def test_bad_sink_urls_are_refused_naming_logger_url(url):
    with pytest.raises(ValueError, match="logger_url"):
        SinkConnection(url, timeout_s=1)
