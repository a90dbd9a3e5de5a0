"""Hostile-client checks against the real predictor on loopback: repository unload/load
and readiness, bounded /metrics labels, streamed body limit, one-line and escaped logs."""

from __future__ import annotations

import socket
import time
import uuid

import httpx
import pytest

from tests.integration.conftest_serving import register_text_model, running_predictor, v2_body

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "s4fety-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("safety-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    register_text_model(tracking, "sentiment")
    return home


def _env(home, **extra) -> dict:
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
        "DRIFTLOOP_MAX_BODY_BYTES": str(LIMIT),
        "DRIFTLOOP_PREDICTOR_HOST": "127.0.0.1",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def open_predictor(home):
    """No token (the default): the repository is open to loopback only."""
    env = _env(home)
    with running_predictor("sentiment", home, env=env) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=10) as http:
            yield predictor, http


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port and len(address) == width:
                found.add(address)
    return found


def test_binds_loopback_by_default(open_predictor):
    predictor, _ = open_predictor
    for port in (predictor.http_port, predictor.grpc_port):
        addresses = _listening_addresses(port)
        # 127.0.0.1 only (gRPC's dual-stack socket shows it as ::ffff:127.0.0.1), no 0.0.0.0/[::]
        assert addresses and addresses <= {"0100007F", "0000000000000000FFFF00000100007F"}, (
            addresses
        )


def test_unload_makes_it_not_ready_and_load_brings_it_back(open_predictor):
    _, http = open_predictor
    assert http.post("/v2/models/sentiment/infer", json=v2_body(["great"])).status_code == 200
    assert http.post("/v2/repository/models/sentiment/unload").status_code == 200
    assert http.get("/v2/health/ready").status_code == 503
    assert http.get("/v2/models/sentiment/ready").status_code == 503
    assert http.post("/v2/models/sentiment/infer", json=v2_body(["great"])).status_code == 503
    assert http.post("/v1/models/sentiment:predict", json={"instances": ["x"]}).status_code == 503
    loaded = http.post("/v2/repository/models/sentiment/load")
    assert loaded.status_code == 200, loaded.text
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2/models/sentiment/ready").status_code == 200
    assert http.post("/v2/models/sentiment/infer", json=v2_body(["great"])).status_code == 200


def test_random_model_names_do_not_grow_metrics(open_predictor):
    _, http = open_predictor
    names = []

    def burst(count: int) -> None:
        for i in range(count):
            name = uuid.uuid4().hex
            names.append(name)
            if i % 3 == 0:
                http.post(f"/v2/models/{name}/infer", json={})
            elif i % 3 == 1:
                http.get(f"/v2/models/{name}/ready")
            else:
                http.post(f"/v1/models/{name}:predict", json={})

    burst(30)  # every series that unknown names (and a scrape) create exists now
    http.get("/metrics")
    before = http.get("/metrics").text
    started = time.perf_counter()
    burst(6000)
    elapsed = time.perf_counter() - started
    after = http.get("/metrics").text
    series_before = {line.rsplit(" ", 1)[0] for line in before.splitlines() if line[:1] != "#"}
    series_after = {line.rsplit(" ", 1)[0] for line in after.splitlines() if line[:1] != "#"}
    print(
        f"/metrics bytes before={len(before)} after={len(after)}; "
        f"series {len(series_before)} -> {len(series_after)}; 6000 requests {elapsed:.1f}s"
    )
    assert series_after == series_before
    assert abs(len(after) - len(before)) < 500  # counter values change, nothing else
    assert not any(name in after for name in names)
    assert 'model="unknown"' in after


def _chunked_upload(port: int, path: str, total: int, chunk: int = 64 * 1024):
    """Stream a chunked POST of ``total`` bytes; (status line, seconds to it, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    started = time.perf_counter()
    payload = b"x" * chunk
    sent = 0
    sock.setblocking(False)
    reply = b""
    try:
        while sent < total:
            try:
                reply += sock.recv(65536)
            except BlockingIOError:
                pass
            if reply:
                break
            try:
                sock.sendall(f"{chunk:x}\r\n".encode() + payload + b"\r\n")
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        sock.settimeout(10)
        while b"\r\n" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    finally:
        sock.close()
    return reply.split(b"\r\n", 1)[0].decode(), time.perf_counter() - started, sent


def test_streamed_body_over_the_limit_is_a_fast_413(open_predictor):
    predictor, http = open_predictor
    status, seconds, sent = _chunked_upload(
        predictor.http_port, "/v2/models/sentiment/infer", total=1024**3
    )
    print(f"413 after {seconds:.3f}s, {sent} bytes sent of 1 GiB")
    assert " 413 " in status + " ", status
    assert seconds < 2.0
    assert sent < 64 * LIMIT
    declared = http.post(
        "/v2/models/sentiment/infer",
        content=b"x" * (LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413 and "limit" in declared.json()["error"]
    # the server still answers, and a normal request works
    answer = http.post("/v2/models/sentiment/infer", json=v2_body(["great product"]))
    assert answer.status_code == 200


def test_client_errors_log_one_escaped_line(open_predictor):
    predictor, http = open_predictor
    start = len(predictor.log_path.read_bytes())
    marker = uuid.uuid4().hex
    forged = f"{marker}\nFORGED-{marker} kserve ERROR admin login"
    http.post(f"/v2/models/{marker}%0AFORGED-{marker}%20kserve%20ERROR/infer", json=v2_body(["x"]))
    http.post(
        "/v2/models/sentiment/infer", json={**v2_body(["x"]), "id": forged}
    )  # request id with a newline
    http.post("/v2/models/sentiment/infer", content=b"{not json", headers={"x": "1"})
    http.post("/v1/models/sentiment:predict", json={"instances": "not-a-list" * 50})
    time.sleep(0.5)
    log = predictor.log_path.read_bytes()[start:].decode(errors="replace")
    assert marker in log
    forged_lines = [line for line in log.splitlines() if line.startswith(f"FORGED-{marker}")]
    assert forged_lines == []
    assert "Traceback" not in log, log[-3000:]


def test_non_loopback_bind_without_token_refuses_to_start(home):
    import os
    import subprocess
    import sys

    from driftloop.serving.smoke import SERVE_ENTRY

    full = {**os.environ, **_env(home)}
    full.pop("DRIFTLOOP_API_TOKEN", None)
    full.pop("DRIFTLOOP_INSECURE", None)
    result = subprocess.run(
        [sys.executable, "-c", SERVE_ENTRY, "serve", "sentiment", "--host", "0.0.0.0"],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DRIFTLOOP_API_TOKEN" in lines[0] and "--insecure" in lines[0]


def test_repository_needs_the_token_when_set(home):
    env = _env(home, DRIFTLOOP_API_TOKEN=TOKEN)
    with running_predictor("sentiment", home, env=env, extra_args=("--no-grpc",)) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=10) as http:
            assert http.post("/v2/repository/models/sentiment/unload").status_code == 401
            assert http.get("/v2/health/ready").status_code == 200
            assert (
                http.post("/v2/repository/models/sentiment/unload", headers=AUTH).status_code == 200
            )
            assert http.get("/v2/health/ready").status_code == 503
            assert (
                http.post("/v2/repository/models/sentiment/load", headers=AUTH).status_code == 200
            )
            assert http.get("/v2/health/ready").status_code == 200
