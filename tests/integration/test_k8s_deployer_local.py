"""LocalDeployer against a v2 (Open Inference Protocol) metadata endpoint on 127.0.0.1.

The endpoint answers ``GET /v2/models/NAME`` the way the driftloop predictor
does (``versions`` lists the version it serves) and switches versions after a
number of reads, as the predictor does when its reload loop picks up a new
champion.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftloop.deploy import NO_LOCAL_PREDICTOR, READY, TIMEOUT
from driftloop.deploy.local import LocalDeployer
from tests.conftest import free_port

pytestmark = pytest.mark.integration


class MetadataServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: str, versions_by_read: list[list[str]], token: str | None = None):
        super().__init__(("127.0.0.1", 0), MetadataHandler)
        self.model = model
        self.versions_by_read = versions_by_read
        self.token = token
        self.reads = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class MetadataHandler(BaseHTTPRequestHandler):
    server: MetadataServer

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server API
        srv = self.server
        if srv.token and self.headers.get("Authorization") != f"Bearer {srv.token}":
            code, body = 401, {"error": "missing or bad bearer token"}
        elif self.path != f"/v2/models/{srv.model}":
            code, body = 404, {"error": f"Model with name {self.path} does not exist."}
        else:
            step = min(srv.reads, len(srv.versions_by_read) - 1)
            srv.reads += 1
            code = 200
            body = {
                "name": srv.model,
                "versions": srv.versions_by_read[step],
                "platform": "",
                "inputs": [],
                "outputs": [],
            }
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def metadata_server():
    servers = []

    def start(*args, **kwargs) -> MetadataServer:
        server = MetadataServer(*args, **kwargs)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_waits_until_the_predictor_reports_the_version(metadata_server):
    server = metadata_server("sentiment", [["1"], ["1"], ["1"], ["2"]], token="s3cret")
    deployer = LocalDeployer(server.url, api_token="s3cret", timeout_s=5, poll_interval_s=0.02)
    result = deployer.roll_out("sentiment", "2")
    assert result.status == READY and result.ready
    assert server.reads == 4
    assert result.url == f"{server.url}/v2/models/sentiment"


def test_times_out_naming_the_versions_it_saw(metadata_server):
    server = metadata_server("sentiment", [["1"]])
    result = LocalDeployer(server.url, timeout_s=0.3, poll_interval_s=0.02).roll_out(
        "sentiment", "2"
    )
    assert result.status == TIMEOUT and not result.ready
    assert "versions seen: 1" in result.message


def test_model_not_loaded_yet_is_waited_for(metadata_server):
    server = metadata_server("other", [["1"]])
    result = LocalDeployer(server.url, timeout_s=0.3, poll_interval_s=0.02).roll_out(
        "sentiment", "1"
    )
    assert result.status == TIMEOUT
    assert "versions seen: none" in result.message


def test_no_predictor_running_is_reported_not_raised():
    port = free_port()  # nothing listens on it
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    result = LocalDeployer(f"http://127.0.0.1:{port}", timeout_s=5).roll_out("sentiment", "3")
    assert result.status == NO_LOCAL_PREDICTOR and not result.ready
    assert result.elapsed_s < 2
    assert result.model_uri == "models:/sentiment/3"
