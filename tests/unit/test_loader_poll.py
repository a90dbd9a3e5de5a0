"""The reload poll asks an HTTP registry once, briefly: no MLflow retry backoff."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftloop.serving import loader
from tests.conftest import free_port


class Registry(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).paths.append(self.path)
        status, body = type(self).answers.pop(0) if type(self).answers else (200, {})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture
def registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Registry.answers, Registry.paths = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_poll_reads_the_alias_in_one_request(registry):
    Registry.answers = [(200, {"model_version": {"name": "sentiment", "version": "7"}})]
    assert loader.current_version("models:/sentiment@champion", registry) == "7"
    assert len(Registry.paths) == 1
    assert Registry.paths[0].startswith("/api/2.0/mlflow/registered-models/alias?")


def test_poll_does_not_retry_a_server_error(registry):
    Registry.answers = [(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down"})] * 5
    started = time.monotonic()
    with pytest.raises(loader.ModelLoadError, match="cannot resolve models:/sentiment@champion"):
        loader.current_version("models:/sentiment@champion", registry)
    assert time.monotonic() - started < 2 and len(Registry.paths) == 1


def test_poll_names_an_unknown_alias(registry):
    Registry.answers = [
        (404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no alias champion"})
    ]
    with pytest.raises(loader.ModelLoadError, match="no alias champion"):
        loader.current_version("models:/sentiment@champion", registry)


def test_poll_of_an_unreachable_registry_fails_at_once():
    started = time.monotonic()
    with pytest.raises(loader.ModelLoadError):
        loader.current_version("models:/sentiment@champion", f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 2


def test_the_environment_is_left_alone(registry, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    Registry.answers = [(200, {"model_version": {"version": "3"}})]
    assert loader.current_version("models:/m@champion", registry) == "3"
    import os

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"
