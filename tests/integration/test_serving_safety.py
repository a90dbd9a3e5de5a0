"""Hostile-client checks against the real predictor on loopback: repository unload/load
and readiness (refused with several workers), bounded /metrics labels, streamed body
limit (memory released), one-line and escaped logs for REST and gRPC client errors."""

from __future__ import annotations

import socket
import statistics
import time
import uuid

import grpc
import httpx
import psutil
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

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


def _rss_mib(pid: int, samples: int = 5) -> float:
    """Median resident set size of ``pid`` over a few samples 50 ms apart, in MiB."""
    process = psutil.Process(pid)
    readings = []
    for _ in range(samples):
        readings.append(process.memory_info().rss / 2**20)
        time.sleep(0.05)
    return statistics.median(readings)


# what a rejected 1 GiB body may leave behind: allocator noise, not the body (it was 1.3 GB)
RSS_MARGIN_MIB = 16.0


def test_streamed_body_over_the_limit_is_a_fast_413(open_predictor):
    predictor, http = open_predictor
    for _ in range(5):  # the request path's first-call allocations happen before the baseline
        http.post("/v2/models/sentiment/infer", json=v2_body(["great product"]))
    baseline = _rss_mib(predictor.process.pid)
    status, seconds, sent = _chunked_upload(
        predictor.http_port, "/v2/models/sentiment/infer", total=1024**3
    )
    time.sleep(0.5)
    after = _rss_mib(predictor.process.pid)
    print(
        f"413 after {seconds:.3f}s, {sent} bytes sent of 1 GiB; predictor RSS "
        f"{baseline:.1f} MiB before, {after:.1f} MiB after ({after - baseline:+.1f} MiB)"
    )
    assert " 413 " in status + " ", status
    assert seconds < 2.0
    assert sent < 64 * LIMIT
    assert after - baseline < RSS_MARGIN_MIB, (baseline, after)
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


def _tensor(name: str, datatype: str, shape: list[int], **contents):
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    if contents:
        tensor.contents.CopyFrom(pb.InferTensorContents(**contents))
    return tensor


def test_grpc_client_errors_log_one_escaped_line(open_predictor):
    predictor, _ = open_predictor
    marker = uuid.uuid4().hex
    forged = f"\nFORGED-{marker} kserve ERROR admin login"
    text = "text" + forged
    requests = [
        # an unknown model whose name carries a forged line
        (pb.ModelInferRequest(model_name=f"x{forged}", inputs=[]), grpc.StatusCode.NOT_FOUND),
        # KServe's own decoding refuses an unknown datatype
        (
            pb.ModelInferRequest(
                model_name="sentiment",
                id=f"id{forged}",
                inputs=[_tensor(text, "X", [1], bytes_contents=[b"ok"])],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        # driftloop's codec refuses non-UTF-8 text
        (
            pb.ModelInferRequest(
                model_name="sentiment",
                inputs=[_tensor("text", "BYTES", [1], bytes_contents=[b"\xff\xfe"])],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        # raw contents too short for a BYTES length prefix
        (
            pb.ModelInferRequest(
                model_name="sentiment",
                inputs=[_tensor(text, "BYTES", [1])],
                raw_input_contents=[b"\x00\x00"],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    start = len(predictor.log_path.read_bytes())
    with grpc.insecure_channel(f"127.0.0.1:{predictor.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for request, expected in requests:
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request, timeout=10)
            assert caught.value.code() == expected, caught.value.details()
    time.sleep(0.5)
    log = predictor.log_path.read_bytes()[start:].decode(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert not [line for line in log.splitlines() if line.startswith(f"FORGED-{marker}")], log
    error_lines = [line for line in log.splitlines() if "ModelInfer -> " in line]
    assert len(error_lines) == len(requests), log
    # the model name and the tensor name reach the log, escaped
    naming = [line for line in error_lines if f"FORGED-{marker}" in line]
    assert len(naming) == 2 and all(f"\\nFORGED-{marker}" in line for line in naming), naming
    print("\n".join(error_lines))


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


def test_repository_changes_are_refused_with_several_workers(home):
    """Each worker holds its own repository: load/unload would reach one process only."""
    with running_predictor(
        "sentiment", home, env=_env(home), workers=2, ready_timeout=180
    ) as predictor:
        start = len(predictor.log_path.read_bytes())
        with httpx.Client(base_url=predictor.url, timeout=10) as http:
            for action in ("unload", "load"):
                answer = http.post(f"/v2/repository/models/sentiment/{action}")
                assert answer.status_code == 409, answer.text
                error = answer.json()["error"]
                assert f"repository {action}" in error and "--workers 2" in error
                assert "restart the predictor" in error
            assert http.get("/v2/health/ready").status_code == 200
            for _ in range(4):  # every worker still serves
                assert (
                    http.post("/v2/models/sentiment/infer", json=v2_body(["fine"])).status_code
                    == 200
                )
        with grpc.insecure_channel(f"127.0.0.1:{predictor.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.RepositoryModelUnload(
                    pb.RepositoryModelUnloadRequest(model_name="sentiment"), timeout=10
                )
            assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "--workers 2" in caught.value.details()
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        time.sleep(0.3)
        log = predictor.log_path.read_bytes()[start:].decode(errors="replace")
        assert "Traceback" not in log, log[-3000:]
