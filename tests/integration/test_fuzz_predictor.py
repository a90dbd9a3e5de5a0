"""Bounded, seeded fuzzing of a real predictor on loopback (sentiment + a tabular model).

Malformed and hostile requests across REST v1, REST v2 JSON (plain and versioned route),
the v2 binary tensor extension, gRPC (KServe's stubs) and the feedback API. Every one
must be answered: never a 5xx, never a dropped connection, never gRPC INTERNAL/UNKNOWN;
and the store gains exactly one row per answered (2xx) predict -- nothing for a rejected
request. ``derandomize=True``: the same examples every run.
"""

from __future__ import annotations

import json
import math
import struct
import time
import urllib.parse
from collections import Counter
from contextlib import ExitStack

import grpc
import httpx
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb  # noqa: E402
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc  # noqa: E402

from driftloop.blueprints import BlueprintSpec  # noqa: E402
from driftloop.store import PredictionStore  # noqa: E402
from tests.integration.conftest_serving import (  # noqa: E402
    register_blueprint_model,
    register_text_model,
    running_predictor,
    table_frame,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 300  # per test below: 7 fuzz tests -> 2,100 requests
FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
SENT = Counter()  # requests sent, by surface
ANSWERED = Counter()  # 2xx predicts, by model (each stores one row)
DATATYPES = ["BYTES", "FP32", "FP64", "INT64", "INT32", "UINT8", "BOOL", "FP16", "bytes", "X", ""]


# --- the predictors -------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    register_text_model(tracking, "sentiment")
    frame, _ = table_frame("penguins")
    penguins = register_blueprint_model(
        tracking,
        "penguins",
        BlueprintSpec("tabular", {"target": "species"}),
        frame,
        candidates=["logistic_regression"],
        home=home,
    )
    columns = list(penguins.blueprint.features(penguins.val).columns)
    state = {"columns": columns}
    with ExitStack() as stack:
        for name in ("sentiment", "penguins"):
            store_url = f"sqlite:///{home / f'store-{name}.db'}"
            env = {
                "DRIFTLOOP_HOME": str(home),
                "MLFLOW_TRACKING_URI": tracking,
                "DRIFTLOOP_STORE_URL": store_url,
                "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
                "DRIFTLOOP_MAX_INSTANCES": "8",
            }
            predictor = stack.enter_context(running_predictor(name, home, env=env))
            http = stack.enter_context(httpx.Client(base_url=predictor.url, timeout=30))
            channel = grpc.insecure_channel(f"127.0.0.1:{predictor.grpc_port}")
            stack.callback(channel.close)
            version = http.get(f"/v2/models/{name}").json()["versions"][0]
            state[name] = {
                "http": http,
                "stub": pb_grpc.GRPCInferenceServiceStub(channel),
                "store_url": store_url,
                "version": version,
                "predictor": predictor,
            }
            state[name]["rows_before"] = settled_rows(store_url)
        yield state


def settled_rows(store_url: str) -> int:
    store = PredictionStore(store_url)
    try:
        count = store.count_predictions()
        while True:
            time.sleep(0.5)
            again = store.count_predictions()
            if again == count:
                return count
            count = again
    finally:
        store.close()


def send(fuzz, model: str, surface: str, method: str, path: str, **kwargs) -> httpx.Response:
    SENT[surface] += 1
    try:
        response = fuzz[model]["http"].request(method, path, **kwargs)
    except httpx.TransportError as exc:  # a dropped connection: never acceptable
        pytest.fail(f"{surface}: {method} {path} dropped the connection: {exc!r} ({kwargs})")
    assert response.status_code < 500, (surface, path, kwargs, response.text[:500])
    if response.status_code >= 400:
        detail = response.text
        assert detail.strip(), (surface, "an error answer must name the problem")
    if 200 <= response.status_code < 300 and surface.startswith(("v1", "v2")):
        ANSWERED[model] += 1
    return response


# --- strategies -----------------------------------------------------------------------
text = st.text(max_size=20)
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
# what an HTTP client will put in a header at all (h11 refuses edge whitespace, empty is unset)
header_text = ascii_text.map(str.strip).filter(bool)
url_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
json_scalar = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
shapes = st.lists(st.integers(min_value=-2, max_value=9), max_size=3) | json_value
client_ids = st.none() | text | st.text(min_size=120, max_size=140) | json_scalar


def dumps(document) -> bytes:
    """JSON as a hostile client writes it: NaN/Infinity tokens allowed."""
    return json.dumps(document, allow_nan=True).encode()


raw_junk = st.sampled_from(
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"inputs"',
        b'{"inputs": NaN}',
        b'{"id": "\\ud800", "inputs": []}',
        b'{"instances": ["\\udfff"]}',
        b"\xff\xfe\x00",
        b'{"instances": [1e400]}',
        b'{"label": NaN}',
        b'{"value": -Infinity}',
        b'{"label": "\\ud83d"}',
        b'{"items": [{"request_id": "\\u0000", "label": "x"}]}',
    ]
) | st.binary(max_size=64)


@st.composite
def v2_documents(draw, columns: list[str] | None):
    if columns is None or draw(st.booleans()):
        names = ["text"] if columns is None else ["text"]
        names = draw(st.lists(st.sampled_from([*names, *(columns or []), "?"]), max_size=3))
    else:
        names = list(columns)
    inputs = []
    for name in names:
        data = draw(
            st.lists(json_value, max_size=6)
            | st.lists(st.text(max_size=30), min_size=1, max_size=6)
            | st.lists(st.floats(allow_nan=True), min_size=1, max_size=6)
            | json_value
        )
        tensor = {
            "name": name,
            "datatype": draw(st.sampled_from(DATATYPES)),
            "shape": draw(shapes)
            if draw(st.booleans())
            else [len(data) if isinstance(data, list) else 1],
            "data": data,
        }
        if draw(st.integers(0, 5)) == 0:
            tensor["parameters"] = draw(json_value)
        if draw(st.integers(0, 7)) == 0:
            tensor.pop(draw(st.sampled_from(["name", "datatype", "shape", "data"])))
        inputs.append(tensor)
    document = {"inputs": inputs}
    client_id = draw(client_ids)
    if client_id is not None:
        document["id"] = client_id
    if draw(st.integers(0, 4)) == 0:
        document["parameters"] = draw(json_value)
    if draw(st.integers(0, 4)) == 0:
        document["outputs"] = draw(json_value)
    return document


# --- REST v2 --------------------------------------------------------------------------
@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_v2_json(fuzz, model, data):
    columns = fuzz["columns"] if model == "penguins" else None
    body = data.draw(v2_documents(columns) | raw_junk)
    content = body if isinstance(body, bytes) else dumps(body)
    headers = {"content-type": "application/json"}
    if data.draw(st.integers(0, 3)) == 0:
        headers["x-request-id"] = data.draw(header_text)
    send(fuzz, model, "v2", "POST", f"/v2/models/{model}/infer", content=content, headers=headers)


@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_v2_versioned_route(fuzz, model, data):
    columns = fuzz["columns"] if model == "penguins" else None
    version = data.draw(st.just(fuzz[model]["version"]) | url_text.filter(bool))
    body = data.draw(v2_documents(columns))
    path = f"/v2/models/{model}/versions/{urllib.parse.quote(version, safe='')}/infer"
    response = send(fuzz, model, "v2-versioned", "POST", path, content=dumps(body))
    if version != fuzz[model]["version"]:
        assert response.status_code in (400, 404), response.text


@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_v2_binary_extension(fuzz, model, data):
    texts = data.draw(st.lists(st.binary(max_size=12), max_size=4))
    payload = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    if data.draw(st.booleans()):
        payload = data.draw(st.binary(max_size=40))
    name = "text" if model == "sentiment" else data.draw(st.sampled_from(fuzz["columns"]))
    size = data.draw(st.just(len(payload)) | st.integers(-3, 80) | json_scalar)
    header = {
        "inputs": [
            {
                "name": name,
                "datatype": data.draw(st.sampled_from(DATATYPES)),
                "shape": data.draw(st.just([len(texts)]) | shapes),
                "parameters": {"binary_data_size": size},
            }
        ],
        "parameters": {"binary_data_output": data.draw(st.booleans())},
    }
    if data.draw(st.booleans()):
        header["id"] = data.draw(text)
    head = dumps(header)
    length = data.draw(st.just(str(len(head))) | header_text | st.integers(-5, 500).map(str))
    send(
        fuzz,
        model,
        "v2-binary",
        "POST",
        f"/v2/models/{model}/infer",
        content=head + payload,
        headers={"inference-header-content-length": length},
    )


# --- REST v1 --------------------------------------------------------------------------
@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_v1(fuzz, model, data):
    instance = (
        st.text(max_size=40)
        | json_value
        | st.dictionaries(st.sampled_from([*fuzz["columns"], "text", "?"]), json_value, max_size=8)
    )
    body = data.draw(
        st.fixed_dictionaries({"instances": st.lists(instance, max_size=10) | json_value})
        | json_value
        | raw_junk
    )
    content = body if isinstance(body, bytes) else dumps(body)
    headers = {}
    for name in data.draw(
        st.lists(
            st.sampled_from(
                [
                    "ce-contenttype",
                    "ce-specversion",
                    "ce-id",
                    "ce-source",
                    "ce-type",
                    "content-type",
                    "x-request-id",
                ]
            ),
            max_size=4,
        )
    ):
        headers[name] = data.draw(
            st.sampled_from(
                ["application/json", "application/cloudevents+json", "1.0", "text/plain"]
            )
            | header_text
        )
    send(fuzz, model, "v1", "POST", f"/v1/models/{model}:predict", content=content, headers=headers)


# --- gRPC -----------------------------------------------------------------------------
@st.composite
def grpc_requests(draw, model: str, columns: list[str]):
    tensors = []
    raw = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["text", *columns, "?"]) | url_text)
        datatype = draw(st.sampled_from(DATATYPES))
        kind = draw(st.sampled_from(["bytes", "fp32", "int64", "bool", "raw", "none"]))
        contents = None
        if kind == "bytes":
            contents = pb.InferTensorContents(
                bytes_contents=draw(st.lists(st.binary(max_size=20), max_size=5))
            )
        elif kind == "fp32":
            contents = pb.InferTensorContents(
                fp32_contents=draw(st.lists(st.floats(width=32, allow_nan=True), max_size=5))
            )
        elif kind == "int64":
            contents = pb.InferTensorContents(
                int64_contents=draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5))
            )
        elif kind == "bool":
            contents = pb.InferTensorContents(
                bool_contents=draw(st.lists(st.booleans(), max_size=5))
            )
        elif kind == "raw":
            raw.append(draw(st.binary(max_size=40)))
        shape = draw(st.lists(st.integers(0, 6), max_size=3))
        tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
        if contents is not None:
            tensor.contents.CopyFrom(contents)
        tensors.append(tensor)
    request = pb.ModelInferRequest(
        model_name=model, id=draw(url_text), inputs=tensors, raw_input_contents=raw
    )
    if draw(st.booleans()):
        request.parameters["binary_data_output"].bool_param = draw(st.booleans())
    return request


@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_grpc(fuzz, model, data):
    request = data.draw(grpc_requests(model, fuzz["columns"]))
    SENT["grpc"] += 1
    try:
        fuzz[model]["stub"].ModelInfer(request, timeout=30)
        ANSWERED[model] += 1
    except grpc.RpcError as exc:
        assert exc.code() not in (
            grpc.StatusCode.INTERNAL,
            grpc.StatusCode.UNKNOWN,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        ), (exc.code(), exc.details(), request)


# --- feedback -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def known_ids(fuzz):
    ids = {}
    for model in ("sentiment", "penguins"):
        if model == "sentiment":
            body = {"instances": ["great product"]}
        else:
            row = {c: None for c in fuzz["columns"]}
            body = {"instances": [row]}
        response = send(fuzz, model, "v1-seed", "POST", f"/v1/models/{model}:predict", json=body)
        ids[model] = response.json()["request_id"] if response.status_code == 200 else "none"
    return ids


feedback_bodies = st.fixed_dictionaries(
    {},
    optional={
        "value": json_value,
        "label": json_value,
        "correct": json_value,
        "source": json_value,
        "extra": json_value,
    },
)


@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_feedback_single(fuzz, known_ids, model, data):
    request_id = data.draw(st.just(known_ids[model]) | url_text.filter(bool))
    body = data.draw(feedback_bodies | json_value | raw_junk)
    content = body if isinstance(body, bytes) else dumps(body)
    path = f"/v1/feedback/{urllib.parse.quote(request_id, safe='')}"
    content_type = data.draw(st.sampled_from(["application/json", "text/plain", ""]))
    headers = {"content-type": content_type} if content_type else {}
    send(fuzz, model, "feedback", "POST", path, content=content, headers=headers)


@FUZZ
@given(model=st.sampled_from(["sentiment", "penguins"]), data=st.data())
def test_fuzz_feedback_batch(fuzz, known_ids, model, data):
    item = st.fixed_dictionaries(
        {"request_id": st.just(known_ids[model]) | text | json_scalar},
        optional={"label": json_value, "value": json_value, "correct": json_value},
    )
    body = data.draw(
        st.fixed_dictionaries({"items": st.lists(item, max_size=5) | json_value}) | raw_junk
    )
    content = body if isinstance(body, bytes) else dumps(body)
    send(
        fuzz,
        model,
        "feedback-batch",
        "POST",
        "/v1/feedback",
        content=content,
        headers={"content-type": "application/json"},
    )


# --- the tally ------------------------------------------------------------------------
def test_zz_fuzz_totals_and_nothing_stored_for_rejected(fuzz):
    total = sum(SENT.values())
    print(f"fuzz requests sent: {total} {dict(SENT)}; answered predicts {dict(ANSWERED)}")
    assert total >= 2000, SENT
    for model in ("sentiment", "penguins"):
        assert fuzz[model]["predictor"].process.poll() is None, "the predictor died"
        rows = settled_rows(fuzz[model]["store_url"]) - fuzz[model]["rows_before"]
        assert rows == ANSWERED[model], (model, rows, ANSWERED[model])
    assert not math.isnan(total)
