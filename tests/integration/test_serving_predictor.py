"""The real predictor (KServe ModelServer subprocess on loopback) answering REST v1/v2 and gRPC,
with auth, input checks, feedback and the payload logger, over a registered MLflow model."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from driftloop.store import PredictionStore
from tests.integration.conftest_serving import (
    NEGATIVE,
    POSITIVE,
    register_text_model,
    running_predictor,
    v2_body,
)
from tests.unit.test_payload_logger import Sink

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "t0ps3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("serving-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, "sentiment")
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_API_TOKEN": TOKEN,
        "DRIFTLOOP_MAX_INSTANCES": "5",
        "DRIFTLOOP_MAX_TEXT_CHARS": "200",
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
        # adaptive batching on, whatever the default: every test here runs through it
        "DRIFTLOOP_MAX_BATCH_SIZE": "64",
        "DRIFTLOOP_MAX_LATENCY_MS": "20",
    }
    with Sink() as sink:
        env["DRIFTLOOP_LOGGER_URL"] = sink.url
        with running_predictor("sentiment", home, env=env) as predictor:
            with httpx.Client(base_url=predictor.url, timeout=10) as http:
                yield {
                    "predictor": predictor,
                    "http": http,
                    "sink": sink,
                    "home": home,
                    "version": version,
                }


def test_v2_infer_contract_and_request_id(stack):
    http = stack["http"]
    started = time.perf_counter()
    response = http.post(
        "/v2/models/sentiment/infer", json=v2_body(["great product", "awful"]), headers=AUTH
    )
    latency_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == response.headers["x-request-id"] and body["id"]
    assert body["model_version"] == stack["version"]
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["data"] == ["positive", "negative"]
    assert outputs["probabilities"]["shape"] == [2, 2]
    assert body["parameters"]["labels"] == ["negative", "positive"]
    print(f"v2 infer latency {latency_ms:.1f} ms")

    with_id = http.post(
        "/v2/models/sentiment/infer", json=v2_body(["fine"], "client-id-1"), headers=AUTH
    )
    # a client's id is a correlation value; the request id is the server's
    assert with_id.json()["id"] == with_id.headers["x-request-id"] != "client-id-1"
    assert with_id.json()["parameters"]["client_request_id"] == "client-id-1"


def test_v1_predict_contract(stack):
    response = stack["http"].post(
        "/v1/models/sentiment:predict", json={"instances": ["i love it"]}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["model_version"] == stack["version"]
    (prediction,) = body["predictions"]
    assert prediction["label"] == "positive"
    assert set(prediction["probabilities"]) == {"negative", "positive"}
    assert isinstance(prediction["low_confidence"], bool)


def test_metadata_reports_served_version_and_health_is_open(stack):
    http = stack["http"]
    metadata = http.get("/v2/models/sentiment").json()
    assert metadata["versions"] == [stack["version"]]
    assert metadata["inputs"][0]["datatype"] == "BYTES"
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/models/sentiment/ready").status_code == 200
    text = http.get("/metrics").text
    assert (
        f'driftloop_model_version_info{{model="sentiment",version="{stack["version"]}"}} 1.0'
        in text
    )


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "nope"}])
def test_predict_and_feedback_need_the_token(stack, headers):
    http = stack["http"]
    assert (
        http.post("/v2/models/sentiment/infer", json=v2_body(["x"]), headers=headers).status_code
        == 401
    )
    assert (
        http.post(
            "/v1/models/sentiment:predict", json={"instances": ["x"]}, headers=headers
        ).status_code
        == 401
    )
    assert (
        http.post("/v1/feedback/abc", json={"label": "positive"}, headers=headers).status_code
        == 401
    )


def test_api_key_header_is_accepted(stack):
    response = stack["http"].post(
        "/v1/models/sentiment:predict", json={"instances": ["ok"]}, headers={"X-API-Key": TOKEN}
    )
    assert response.status_code == 200


BAD_V2 = [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid UTF-8"),
    (b"{}", 'missing \\"inputs\\"'),
    (b'{"inputs": []}', 'missing \\"inputs\\"'),
    (b'{"inputs": [{"name": "text", "datatype": "INT32", "shape": [1], "data": [1]}]}', "BYTES"),
    (
        b'{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a"]}]}',
        "does not match",
    ),
    (b'{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [0], "data": []}]}', "is empty"),
    (json.dumps(v2_body(["a"] * 6)).encode(), "at most 5"),
    (json.dumps(v2_body(["x" * 201])).encode(), "at most 200"),
    (b'{"inputs": [{"name": "text"}]}', "invalid v2 inference request"),
]


@pytest.mark.parametrize(("body", "message"), BAD_V2)
def test_bad_v2_input_is_a_400_naming_the_problem(stack, body, message):
    response = stack["http"].post(
        "/v2/models/sentiment/infer",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert message in response.text


BAD_V1 = [
    (b"{not json", "request body is not valid JSON"),
    (b"{}", "missing"),
    (b'{"instances": []}', "is empty"),
    (b'{"instances": [42]}', "must be a string"),
    (b'{"instances": ["a", "b", "c", "d", "e", "f"]}', "at most 5"),
]


@pytest.mark.parametrize(("body", "message"), BAD_V1)
def test_bad_v1_input_is_a_400_naming_the_problem(stack, body, message):
    response = stack["http"].post(
        "/v1/models/sentiment:predict",
        content=body,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert message in response.text


def test_server_survives_bad_input(stack):
    ok = stack["http"].post(
        "/v1/models/sentiment:predict", json={"instances": ["good"]}, headers=AUTH
    )
    assert ok.status_code == 200
    assert stack["predictor"].process.poll() is None


def test_grpc_infer_with_token_and_errors(stack):
    channel = grpc.insecure_channel(f"127.0.0.1:{stack['predictor'].grpc_port}")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[2],
        contents=pb.InferTensorContents(bytes_contents=[b"great product", b"awful"]),
    )
    request = pb.ModelInferRequest(model_name="sentiment", inputs=[tensor])
    try:
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        response = stub.ModelInfer(
            request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10
        )
        outputs = {o.name: o for o in response.outputs}
        assert list(outputs["label"].contents.bytes_contents) == [b"positive", b"negative"]
        assert list(outputs["probabilities"].shape) == [2, 2]
        assert response.id and response.model_version == stack["version"]
        assert json.loads(response.parameters["labels"].string_param) == ["negative", "positive"]

        with pytest.raises(grpc.RpcError) as denied:
            stub.ModelInfer(request, timeout=10)
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED

        bad = pb.ModelInferRequest(
            model_name="sentiment",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="text",
                    datatype="FP32",
                    shape=[1],
                    contents=pb.InferTensorContents(fp32_contents=[1.0]),
                )
            ],
        )
        with pytest.raises(grpc.RpcError) as invalid:
            stub.ModelInfer(bad, metadata=(("x-api-key", TOKEN),), timeout=10)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "BYTES" in invalid.value.details()
    finally:
        channel.close()


def test_feedback_api(stack):
    http = stack["http"]
    predicted = http.post(
        "/v1/models/sentiment:predict", json={"instances": ["i love it"]}, headers=AUTH
    ).json()
    request_id = predicted["request_id"]
    # immediately after predict: the row may still be queued, feedback must find it
    first = http.post(f"/v1/feedback/{request_id}", json={"label": "negative"}, headers=AUTH)
    assert first.status_code == 200, first.text
    assert first.json()["correct"] is False
    again = http.post(f"/v1/feedback/{request_id}", json={"correct": True}, headers=AUTH)
    assert again.json() == {**again.json(), "label": "positive", "correct": True}

    unknown = http.post("/v1/feedback/no-such-request", json={"label": "positive"}, headers=AUTH)
    assert unknown.status_code == 404 and "no-such-request" in unknown.text
    invalid = http.post(f"/v1/feedback/{request_id}", json={"label": "neutral"}, headers=AUTH)
    assert invalid.status_code == 422 and "['negative', 'positive']" in invalid.text
    empty = http.post(f"/v1/feedback/{request_id}", json={}, headers=AUTH)
    assert empty.status_code == 422
    wrong_type = http.post(f"/v1/feedback/{request_id}", json={"correct": "maybe"}, headers=AUTH)
    assert wrong_type.status_code == 422 and "correct" in wrong_type.text

    second = http.post("/v2/models/sentiment/infer", json=v2_body(["awful"]), headers=AUTH).json()[
        "id"
    ]
    batch = http.post(
        "/v1/feedback",
        headers=AUTH,
        json={
            "items": [
                {"request_id": request_id, "label": "positive"},
                {"request_id": second, "correct": True},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["accepted"] == 2
    missing = http.post(
        "/v1/feedback",
        headers=AUTH,
        json={
            "items": [
                {"request_id": second, "label": "negative"},
                {"request_id": "ghost", "label": "negative"},
            ]
        },
    )
    assert missing.status_code == 404 and "ghost" in missing.text

    store = PredictionStore(f"sqlite:///{stack['home'] / 'store.db'}")
    try:
        history = store.feedback_history(request_id)
        assert [f.label for f in history] == ["negative", "positive", "positive"]
        pairs = {pair.request_id: pair for pair in store.feedback_pairs("sentiment")}
        assert pairs[request_id].value == "positive"
        assert pairs[request_id].inputs == ["i love it"]
        assert pairs[second].value == "negative"
        assert len(store.feedback_history(second)) == 1  # the failed batch wrote nothing
        assert store.feedback_stats("sentiment").count >= 2
    finally:
        store.close()


def _store(stack) -> PredictionStore:
    return PredictionStore(f"sqlite:///{stack['home'] / 'store.db'}")


def _count_rows(stack) -> int:
    """The stored predictions, once the predictor's write queue has settled."""
    store = _store(stack)
    try:
        count = store.count_predictions()
        while True:
            time.sleep(0.3)
            again = store.count_predictions()
            if again == count:
                return count
            count = again
    finally:
        store.close()


def test_a_reused_client_id_cannot_squat_or_relabel_another_prediction(stack):
    http = stack["http"]
    first = http.post(
        "/v2/models/sentiment/infer", json=v2_body(["i love it"], "order-42"), headers=AUTH
    )
    second = http.post(
        "/v2/models/sentiment/infer", json=v2_body(["awful, broken"], "order-42"), headers=AUTH
    )
    v1 = http.post(
        "/v1/models/sentiment:predict",
        json={"instances": ["meh"]},
        headers={**AUTH, "x-request-id": "order-42"},
    )
    assert first.status_code == second.status_code == v1.status_code == 200
    ids = [first.json()["id"], second.json()["id"], v1.json()["request_id"]]
    assert len(set(ids)) == 3 and "order-42" not in ids
    assert v1.json()["client_request_id"] == "order-42"
    assert [r.headers["x-request-id"] for r in (first, second, v1)] == ids
    # each client labels its own prediction; the squatter's id labels nothing
    for request_id in ids:
        answer = http.post(f"/v1/feedback/{request_id}", json={"correct": True}, headers=AUTH)
        assert answer.status_code == 200, answer.text
    squat = http.post("/v1/feedback/order-42", json={"label": "negative"}, headers=AUTH)
    assert squat.status_code == 404
    store = _store(stack)
    try:
        rows = [store.get_prediction(request_id) for request_id in ids]
        assert [r.inputs for r in rows] == [["i love it"], ["awful, broken"], ["meh"]]
        assert store.get_prediction("order-42") is None
    finally:
        store.close()


@pytest.mark.parametrize("client_id", ["\u20ac", "a\nb", "\r\n", "a\u0000b", "x" * 128])
def test_any_client_id_text_is_answered_and_echoed(stack, client_id):
    http = stack["http"]
    response = http.post(
        "/v2/models/sentiment/infer", json=v2_body(["great"], client_id), headers=AUTH
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["parameters"]["client_request_id"] == client_id
    assert body["id"] == response.headers["x-request-id"] and len(body["id"]) == 32


def test_too_long_client_id_is_a_400_and_stores_nothing(stack):
    before = _count_rows(stack)
    response = stack["http"].post(
        "/v2/models/sentiment/infer", json=v2_body(["great"], "x" * 129), headers=AUTH
    )
    assert response.status_code == 400 and "at most 128" in response.text
    assert _count_rows(stack) == before


def test_v1_ignores_cloudevent_headers(stack):
    response = stack["http"].post(
        "/v1/models/sentiment:predict",
        content=b'{"instances": ["great"]}',
        headers={**AUTH, "ce-contenttype": "application/json", "content-type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] == "positive"


def test_versioned_v2_route(stack):
    http = stack["http"]
    served = http.post(
        f"/v2/models/sentiment/versions/{stack['version']}/infer",
        json=v2_body(["great"]),
        headers=AUTH,
    )
    assert served.status_code == 200, served.text
    assert served.json()["model_version"] == stack["version"]
    other = http.post(
        "/v2/models/sentiment/versions/999/infer", json=v2_body(["great"]), headers=AUTH
    )
    assert other.status_code == 404 and "'999'" in other.text
    unknown = http.post("/v2/models/nope/versions/1/infer", json=v2_body(["x"]), headers=AUTH)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "raw",
    [
        b'{"label": NaN}',
        b'{"value": Infinity}',
        b'{"value": 1e400}',
        b'{"label": "\\ud800"}',
        b'{"label": "a\\u0000b"}',
        b'{"source": "\\u0000"}',
    ],
)
def test_hostile_feedback_bodies_are_422(stack, raw):
    http = stack["http"]
    request_id = http.post(
        "/v1/models/sentiment:predict", json={"instances": ["fine"]}, headers=AUTH
    ).json()["request_id"]
    response = http.post(
        f"/v1/feedback/{request_id}",
        content=raw,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    batch = http.post(
        "/v1/feedback",
        content=b'{"items": [{"request_id": "%s", "label": NaN}]}' % request_id.encode(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert batch.status_code == 422, batch.text


def test_feedback_batch_of_unknown_ids_is_fast(stack):
    items = [{"request_id": f"unknown-{i}", "label": "positive"} for i in range(1000)]
    started = time.perf_counter()
    response = stack["http"].post("/v1/feedback", json={"items": items}, headers=AUTH)
    elapsed = time.perf_counter() - started
    print(f"feedback batch of 1000 unknown ids: {elapsed:.3f} s")
    assert response.status_code == 404 and "unknown-999" in response.text
    assert elapsed < 1.0


def test_payload_logger_sends_request_and_response_events(stack):
    http, sink = stack["http"], stack["sink"]
    request_id = http.post(
        "/v1/models/sentiment:predict", json={"instances": ["lovely"]}, headers=AUTH
    ).json()["request_id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [(h, b) for h, b in sink.events if h["ce-id"] == request_id]
        if len(mine) == 2:
            break
        time.sleep(0.05)
    kinds = {h["ce-type"]: json.loads(b) for h, b in mine}
    assert kinds["org.kubeflow.serving.inference.request"] == {"instances": ["lovely"]}
    assert kinds["org.kubeflow.serving.inference.response"]["request_id"] == request_id
    headers = mine[0][0]
    assert headers["ce-inferenceservicename"] == "sentiment"
    assert headers["ce-component"] == "predictor" and headers["ce-specversion"] == "1.0"


def test_predict_command_prints_a_table(stack, capsys):
    from driftloop.cli import main

    url = stack["predictor"].url
    code = main(["predict", "sentiment", "great product", "awful", "--url", url, "--token", TOKEN])
    out = capsys.readouterr().out
    assert code == 0
    assert "positive" in out and "negative" in out and "request id" in out
    assert main(["predict", "sentiment", "x", "--url", url, "--protocol", "v1"]) == 2
    assert "HTTP 401" in capsys.readouterr().err


# --- adaptive batching (serving.batching) ---------------------------------------------------
BATCH_TEXTS = [f"{text} {i}" for i, text in enumerate(POSITIVE + NEGATIVE)]  # 16 distinct
INFER = "/v2/models/sentiment/infer"


def batch_calls(url: str) -> tuple[float, float]:
    """(model calls, instances) the predictor's batch-size histogram has counted."""
    text = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10).text
    values = {}
    for kind in ("count", "sum"):
        found = re.search(rf'^driftloop_batch_size_{kind}{{model="sentiment"}} (\S+)$', text, re.M)
        values[kind] = float(found.group(1)) if found else 0.0
    return values["count"], values["sum"]


def answer(response: httpx.Response) -> tuple[str, list[float]]:
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    return outputs["label"]["data"][0], outputs["probabilities"]["data"]


def test_concurrent_requests_share_model_calls_yet_keep_their_own_everything(stack):
    """Adaptive batching over sockets: the answer each request gets alone, its own request
    id, prediction record and payload events; a bad request among them fails alone."""
    url, sink = stack["predictor"].url, stack["sink"]
    http = stack["http"]
    alone = {
        text: answer(http.post(INFER, json=v2_body([text]), headers=AUTH)) for text in BATCH_TEXTS
    }
    calls_before, rows_before = batch_calls(url)

    def post(body: dict) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
            client.get("/v2/health/live")  # connected before the barrier: all start at once
            start.wait()
            return client.post(INFER, json=body)

    bad = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["   "]}]}
    bodies = [v2_body([text], f"client-{i}") for i, text in enumerate(BATCH_TEXTS)]
    bodies.insert(5, bad)
    start = threading.Barrier(len(bodies) + 1, timeout=30)
    with ThreadPoolExecutor(len(bodies)) as pool:
        futures = [pool.submit(post, body) for body in bodies]
        start.wait()
        responses = [future.result() for future in futures]

    refused = responses.pop(5)
    assert refused.status_code == 400 and "inputs[text][0] is an empty text" in refused.text
    assert [r.status_code for r in responses] == [200] * len(BATCH_TEXTS), [
        r.text for r in responses
    ]
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == len(BATCH_TEXTS)
    for i, (text, response) in enumerate(zip(BATCH_TEXTS, responses, strict=True)):
        assert response.headers["x-request-id"] == ids[i]
        assert response.json()["parameters"]["client_request_id"] == f"client-{i}"
        label, probabilities = answer(response)
        assert label == alone[text][0]
        assert probabilities == pytest.approx(alone[text][1], rel=1e-6)

    calls, rows = batch_calls(url)
    assert rows - rows_before == len(BATCH_TEXTS)
    assert calls - calls_before < len(BATCH_TEXTS), "no two concurrent requests shared a model call"

    store = PredictionStore(f"sqlite:///{stack['home'] / 'store.db'}")
    try:
        deadline = time.monotonic() + 15
        records = store.get_predictions(ids)
        while len(records) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.2)
            records = store.get_predictions(ids)
    finally:
        store.close()
    assert set(records) == set(ids)
    for text, request_id, response in zip(BATCH_TEXTS, ids, responses, strict=True):
        assert records[request_id].inputs == [text]
        assert records[request_id].label == answer(response)[0]

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = [(h, b) for h, b in list(sink.events) if h["ce-id"] in set(ids)]
        if len(events) >= 2 * len(ids):
            break
        time.sleep(0.1)
    by_id: dict[str, dict[str, dict]] = {}
    for headers, body in events:
        by_id.setdefault(headers["ce-id"], {})[headers["ce-type"]] = json.loads(body)
    assert set(by_id) == set(ids)
    for text, request_id in zip(BATCH_TEXTS, ids, strict=True):
        kinds = by_id[request_id]
        assert kinds["org.kubeflow.serving.inference.request"]["inputs"][0]["data"] == [text]
        assert kinds["org.kubeflow.serving.inference.response"]["id"] == request_id
