"""The tabular blueprint served for real: two versions trained on shipped tables (penguins:
classification over numeric, categorical and missing cells; diabetes: an all-numeric
regression), registered in a private sqlite MLflow registry with the blueprint spec tagged,
each served by ``driftloop serve NAME`` (KServe ModelServer subprocess on loopback).

Every protocol a client may use answers the same as the fitted model itself: v1, v2 REST JSON
(one input per column; one FP32 [n, d] tensor for the all-numeric table), v2 gRPC typed
contents (KServe's protos in-process), tritonclient.http with its default binary tensors and
tritonclient.grpc with its default raw contents (in a child process: its protos and KServe's
clash in one process, see test_serving_oip_clients). Bad rows are HTTP 400 / gRPC
INVALID_ARGUMENT naming the field, feedback is checked against the version's blueprint and
stored, and the model metadata lists the table's columns."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from driftloop.blueprints import BlueprintSpec
from driftloop.store import PredictionStore
from tests.integration.conftest_serving import (
    RegisteredBlueprintModel,
    RunningPredictor,
    register_blueprint_model,
    running_predictor,
    table_frame,
)

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "t4bular"
# tritonclient.http adds its own headers to the dict it is given: pass it a copy
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {TOKEN}"),)
HAS_TRITON_GRPC = importlib.util.find_spec("tritonclient.grpc") is not None

PENGUIN_CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
PENGUIN_INPUTS = [
    {"name": "island", "datatype": "BYTES", "shape": [-1]},
    {"name": "bill_length_mm", "datatype": "FP32", "shape": [-1]},
    {"name": "bill_depth_mm", "datatype": "FP32", "shape": [-1]},
    {"name": "flipper_length_mm", "datatype": "FP32", "shape": [-1]},
    {"name": "body_mass_g", "datatype": "FP32", "shape": [-1]},
    {"name": "sex", "datatype": "BYTES", "shape": [-1]},
    {"name": "year", "datatype": "FP32", "shape": [-1]},
]
DIABETES_COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
# the wire type each numeric column travels as (a mix: the codec takes any numeric type)
PENGUIN_DATATYPES = {"year": "INT64", "body_mass_g": "FP64"}


# --- fixtures -------------------------------------------------------------------------
@dataclass
class Served:
    registered: RegisteredBlueprintModel
    predictor: RunningPredictor
    http: httpx.Client
    store_url: str
    rows: list[dict]  # feature rows, JSON-safe (None: missing), a numeric cell missing in one

    @property
    def name(self) -> str:
        return self.registered.name

    @property
    def version(self) -> str:
        return self.registered.version

    @property
    def classifier(self) -> bool:
        return self.registered.blueprint.classifier

    @property
    def kinds(self) -> dict[str, str]:
        return dict(self.registered.model.steps[0][1].kinds_)

    def expected(self, rows: list[dict] | None = None) -> Answer:
        """What the fitted model itself says about ``rows`` (default: ``self.rows``)."""
        frame = pd.DataFrame(rows or self.rows, columns=list(self.kinds))
        model = self.registered.model
        if self.classifier:
            probabilities = model.predict_proba(frame)
            labels = [str(model.classes_[i]) for i in probabilities.argmax(axis=1)]
            return Answer(labels=labels, values=np.asarray(probabilities, dtype=np.float64))
        return Answer(labels=None, values=np.asarray(model.predict(frame), dtype=np.float64))


def json_safe(value):
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def feature_rows(registered: RegisteredBlueprintModel, count: int) -> list[dict]:
    """``count`` complete validation rows (one per class first), then one numeric cell cleared."""
    blueprint, val = registered.blueprint, registered.val
    complete = val[blueprint.features(val).notna().all(axis=1)]
    if blueprint.classifier:
        picked = complete.groupby(blueprint.target_column, sort=True).head(1)
        picked = pd.concat([picked, complete.drop(picked.index)]).head(count)
    else:
        picked = complete.head(count)
    rows = [
        {column: json_safe(value) for column, value in row.items()}
        for row in blueprint.features(picked).to_dict(orient="records")
    ]
    numeric = [c for c, kind in registered.model.steps[0][1].kinds_.items() if kind == "numeric"]
    rows[-1][numeric[1]] = None  # imputed by the model; travels as null / NaN
    return rows


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    home = tmp_path_factory.mktemp("tabular-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    cases = {
        "penguins": (BlueprintSpec("tabular", {"target": "species"}), ["logistic_regression"]),
        "diabetes": (BlueprintSpec("tabular", {"target": "progression"}), ["ridge"]),
    }
    served: dict[str, Served] = {}
    with ExitStack() as stack:
        for name, (spec, candidates) in cases.items():
            frame, _ = table_frame(name)
            registered = register_blueprint_model(
                tracking, name, spec, frame, candidates=candidates, home=home
            )
            store_url = f"sqlite:///{home / f'store-{name}.db'}"
            env = {
                "DRIFTLOOP_HOME": str(home),
                "MLFLOW_TRACKING_URI": tracking,
                "DRIFTLOOP_STORE_URL": store_url,
                "DRIFTLOOP_API_TOKEN": TOKEN,
                "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
            }
            predictor = stack.enter_context(running_predictor(name, home, env=env))
            http = stack.enter_context(httpx.Client(base_url=predictor.url, timeout=20))
            served[name] = Served(
                registered, predictor, http, store_url, feature_rows(registered, 4)
            )
        yield served


@pytest.fixture(scope="module")
def penguins(tables) -> Served:
    return tables["penguins"]


@pytest.fixture(scope="module")
def diabetes(tables) -> Served:
    return tables["diabetes"]


# --- answers ----------------------------------------------------------------------------
@dataclass
class Answer:
    labels: list[str] | None  # a classifier's labels
    values: np.ndarray  # probabilities [n, classes] or predictions [n]


def check(answer: Answer, served: Served, rows: list[dict] | None = None) -> None:
    expected = served.expected(rows)
    # inputs may travel as FP32, so the model sees them rounded to float32
    np.testing.assert_allclose(answer.values, expected.values, rtol=1e-4, atol=1e-5)
    assert answer.labels == expected.labels


def from_v1(body: dict, served: Served) -> Answer:
    predictions = body["predictions"]
    if served.classifier:
        assert all(set(p) == {"label", "probabilities", "low_confidence"} for p in predictions)
        return Answer(
            [p["label"] for p in predictions],
            np.array([[p["probabilities"][c] for c in PENGUIN_CLASSES] for p in predictions]),
        )
    assert all(set(p) == {"prediction"} for p in predictions)
    return Answer(None, np.array([p["prediction"] for p in predictions], dtype=np.float64))


def from_arrays(arrays: dict[str, np.ndarray], served: Served, n: int) -> Answer:
    if served.classifier:
        assert set(arrays) == {"label", "probabilities", "low_confidence"}
        labels = [x.decode() if isinstance(x, bytes) else x for x in arrays["label"].reshape(-1)]
        probabilities = arrays["probabilities"]
        assert probabilities.dtype == np.float32 and probabilities.shape == (n, 3)
        assert arrays["low_confidence"].dtype == np.bool_
        assert arrays["low_confidence"].shape == (n,)
        return Answer(labels, probabilities.astype(np.float64))
    assert set(arrays) == {"prediction"}
    assert arrays["prediction"].dtype == np.float64 and arrays["prediction"].shape == (n,)
    return Answer(None, arrays["prediction"])


OIP_DTYPES = {
    "FP32": np.float32,
    "FP64": np.float64,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "BYTES": np.object_,
}


def from_v2_json(body: dict, served: Served, n: int) -> Answer:
    arrays = {}
    for output in body["outputs"]:
        dtype = OIP_DTYPES[output["datatype"]]
        arrays[output["name"]] = np.array(output["data"], dtype=dtype).reshape(output["shape"])
    return from_arrays(arrays, served, n)


# --- request bodies ---------------------------------------------------------------------
def column_inputs(served: Served, rows: list[dict], datatypes: dict | None = None) -> list[dict]:
    """One v2 input per column: numeric FP32 (or ``datatypes``' choice), the rest BYTES."""
    datatypes = PENGUIN_DATATYPES if datatypes is None else datatypes
    inputs = []
    for column, kind in served.kinds.items():
        datatype = datatypes.get(column, "FP32" if kind == "numeric" else "BYTES")
        data = [row[column] for row in rows]
        inputs.append({"name": column, "datatype": datatype, "shape": [len(rows)], "data": data})
    return inputs


def matrix_input(rows: list[dict], columns: list[str], name: str = "features") -> dict:
    data = [[np.nan if row[c] is None else row[c] for c in columns] for row in rows]
    return {
        "name": name,
        "datatype": "FP32",
        "shape": [len(rows), len(columns)],
        "data": [[None if math.isnan(v) else v for v in row] for row in data],
    }


def as_numpy(tensor: dict) -> np.ndarray:
    """A JSON input as the array a binary client would send (NaN for a missing number)."""
    dtype = OIP_DTYPES[tensor["datatype"]]
    flat = list(pd.core.common.flatten(tensor["data"]))
    if dtype is np.object_:
        assert None not in flat, "BYTES cannot carry a missing value in binary"
        array = np.array([str(v).encode() for v in flat], dtype=np.object_)
    else:
        array = np.array([np.nan if v is None else v for v in flat], dtype=dtype)
    return array.reshape(tensor["shape"])


def post(served: Served, path: str, body) -> httpx.Response:
    kwargs = {"json": body} if not isinstance(body, bytes) else {"content": body}
    headers = AUTH if not isinstance(body, bytes) else {**AUTH, "content-type": "application/json"}
    return served.http.post(path, headers=headers, **kwargs)


def v1(served: Served, instances) -> httpx.Response:
    return post(served, f"/v1/models/{served.name}:predict", {"instances": instances})


def v2(served: Served, inputs: list[dict], **extra) -> httpx.Response:
    return post(served, f"/v2/models/{served.name}/infer", {"inputs": inputs, **extra})


# --- predictions across protocols -------------------------------------------------------
@pytest.mark.parametrize("table", ["penguins", "diabetes"])
def test_v1_predict(tables, table):
    served = tables[table]
    response = v1(served, served.rows)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == served.version
    assert body["request_id"] == response.headers["x-request-id"]
    check(from_v1(body, served), served)
    if served.classifier:  # every species the model knows is predicted for its own rows
        assert sorted(set(from_v1(body, served).labels)) == PENGUIN_CLASSES


@pytest.mark.parametrize("table", ["penguins", "diabetes"])
def test_v2_rest_json_one_input_per_column(tables, table):
    served = tables[table]
    response = v2(served, column_inputs(served, served.rows), id="tabular-v2-json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == served.version
    # the request id is the server's; the client's comes back as a correlation value
    assert body["id"] != "tabular-v2-json" and body["id"] == response.headers["x-request-id"]
    assert body["parameters"]["client_request_id"] == "tabular-v2-json"
    check(from_v2_json(body, served, len(served.rows)), served)
    if served.classifier:
        assert body["parameters"]["labels"] == PENGUIN_CLASSES


def test_v2_rest_json_missing_categorical_is_imputed(penguins):
    rows = [dict(penguins.rows[0], sex=None), dict(penguins.rows[1], island=None, sex=None)]
    by_v2 = v2(penguins, column_inputs(penguins, rows))
    by_v1 = v1(penguins, rows)
    assert by_v2.status_code == 200 == by_v1.status_code, by_v2.text + by_v1.text
    check(from_v2_json(by_v2.json(), penguins, 2), penguins, rows)
    check(from_v1(by_v1.json(), penguins), penguins, rows)


def test_v2_rest_single_fp32_matrix(diabetes):
    rows = diabetes.rows
    response = v2(diabetes, [matrix_input(rows, DIABETES_COLUMNS)])
    assert response.status_code == 200, response.text
    check(from_v2_json(response.json(), diabetes, len(rows)), diabetes)
    # NaN in the matrix (binary FP32 carries it) is a missing cell, imputed like null
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{diabetes.predictor.http_port}")
    try:
        tensor = httpclient.InferInput("features", [len(rows), len(DIABETES_COLUMNS)], "FP32")
        tensor.set_data_from_numpy(as_numpy(matrix_input(rows, DIABETES_COLUMNS)))
        result = client.infer("diabetes", [tensor], headers=dict(AUTH))
        check(from_arrays({"prediction": result.as_numpy("prediction")}, diabetes, 4), diabetes)
    finally:
        client.close()


@pytest.mark.parametrize("table", ["penguins", "diabetes"])
def test_tritonclient_http_binary_inputs_and_outputs(tables, table):
    served = tables[table]
    rows = served.rows
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{served.predictor.http_port}")
    try:
        tensors = []
        for tensor in column_inputs(served, rows):
            infer_input = httpclient.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            infer_input.set_data_from_numpy(as_numpy(tensor))  # binary_data=True by default
            assert infer_input._get_binary_data() is not None
            tensors.append(infer_input)
        # no outputs named: tritonclient asks binary_data_output=true for all of them
        result = client.infer(served.name, tensors, headers=dict(AUTH), request_id="triton-http")
        response = result.get_response()
        assert response["model_version"] == served.version
        assert response["id"] != "triton-http" and len(response["id"]) == 32  # server-assigned
        assert response["parameters"]["client_request_id"] == "triton-http"
        assert all(o["parameters"]["binary_data_size"] > 0 for o in response["outputs"])
        assert all("data" not in o for o in response["outputs"])
        names = [o["name"] for o in response["outputs"]]
        check(from_arrays({n: result.as_numpy(n) for n in names}, served, len(rows)), served)

        # JSON outputs on request: the same answer
        outputs = [httpclient.InferRequestedOutput(n, binary_data=False) for n in names]
        as_json = client.infer(served.name, tensors, outputs=outputs, headers=dict(AUTH))
        assert all("data" in o for o in as_json.get_response()["outputs"])
        check(from_arrays({n: as_json.as_numpy(n) for n in names}, served, len(rows)), served)
    finally:
        client.close()


def grpc_tensor(tensor: dict) -> pb.ModelInferRequest.InferInputTensor:
    """A typed-contents gRPC input (what KServe's own protos send when not raw)."""
    if tensor["datatype"] in ("UINT8", "UINT16", "UINT32", "INT8", "INT16", "INT32"):
        # as sent, unchecked (numpy would wrap an out-of-range value before the server saw it)
        field = "uint_contents" if tensor["datatype"].startswith("U") else "int_contents"
        return pb.ModelInferRequest.InferInputTensor(
            name=tensor["name"],
            datatype=tensor["datatype"],
            shape=tensor["shape"],
            contents=pb.InferTensorContents(**{field: tensor["data"]}),
        )
    array = as_numpy(tensor).reshape(-1)
    field = {
        "FP32": "fp32_contents",
        "FP64": "fp64_contents",
        "INT64": "int64_contents",
        "BYTES": "bytes_contents",
        "BOOL": "bool_contents",
    }[tensor["datatype"]]
    return pb.ModelInferRequest.InferInputTensor(
        name=tensor["name"],
        datatype=tensor["datatype"],
        shape=tensor["shape"],
        contents=pb.InferTensorContents(**{field: array.tolist()}),
    )


def from_grpc_contents(response: pb.ModelInferResponse, served: Served, n: int) -> Answer:
    arrays = {}
    for output in response.outputs:
        contents = output.contents
        values = {
            "BYTES": list(contents.bytes_contents),
            "FP32": list(contents.fp32_contents),
            "FP64": list(contents.fp64_contents),
            "BOOL": list(contents.bool_contents),
        }[output.datatype]
        dtype = OIP_DTYPES[output.datatype]
        arrays[output.name] = np.array(values, dtype=dtype).reshape(list(output.shape))
    return from_arrays(arrays, served, n)


@pytest.fixture(scope="module")
def stubs(tables):
    channels = {
        name: grpc.insecure_channel(f"127.0.0.1:{served.predictor.grpc_port}")
        for name, served in tables.items()
    }
    yield {name: pb_grpc.GRPCInferenceServiceStub(channel) for name, channel in channels.items()}
    for channel in channels.values():
        channel.close()


@pytest.mark.parametrize("table", ["penguins", "diabetes"])
def test_grpc_typed_contents(tables, stubs, table):
    served, stub = tables[table], stubs[table]
    rows = served.rows
    request = pb.ModelInferRequest(
        model_name=served.name,
        id="grpc-typed",
        inputs=[grpc_tensor(t) for t in column_inputs(served, rows)],
    )
    response = stub.ModelInfer(request, metadata=GRPC_AUTH, timeout=20)
    assert response.model_version == served.version
    assert response.id != "grpc-typed" and len(response.id) == 32  # server-assigned
    assert response.parameters["client_request_id"].string_param == "grpc-typed"
    assert not response.raw_output_contents
    check(from_grpc_contents(response, served, len(rows)), served)
    if served.classifier:
        assert json.loads(response.parameters["labels"].string_param) == PENGUIN_CLASSES


def test_grpc_typed_matrix(diabetes, stubs):
    rows = diabetes.rows
    request = pb.ModelInferRequest(
        model_name="diabetes", inputs=[grpc_tensor(matrix_input(rows, DIABETES_COLUMNS))]
    )
    response = stubs["diabetes"].ModelInfer(request, metadata=GRPC_AUTH, timeout=20)
    check(from_grpc_contents(response, diabetes, len(rows)), diabetes)


TRITON_GRPC = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    port, token, model, calls = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "BYTES": np.object_}
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    answers = []
    for inputs in calls:
        tensors = []
        for item in inputs:
            flat = np.array(item["data"], dtype=object).reshape(-1).tolist()
            if item["datatype"] == "BYTES":
                array = np.array([str(v).encode() for v in flat], dtype=np.object_)
            else:
                array = np.array(
                    [np.nan if v is None else v for v in flat], dtype=DTYPES[item["datatype"]]
                )
            tensor = grpcclient.InferInput(item["name"], item["shape"], item["datatype"])
            tensor.set_data_from_numpy(array.reshape(item["shape"]))
            tensors.append(tensor)
        sent_raw = all(
            bool(t._get_content()) and not t._get_tensor().HasField("contents") for t in tensors
        )
        try:
            result = client.infer(
                model, tensors, headers={"authorization": f"Bearer {token}"}
            )
        except InferenceServerException as exc:
            answers.append({"sent_raw": sent_raw, "status": exc.status(), "error": exc.message()})
            continue
        response = result.get_response()
        outputs = {}
        for output in response.outputs:
            array = result.as_numpy(output.name)
            flat = array.reshape(-1).tolist()
            outputs[output.name] = {
                "dtype": str(array.dtype),
                "shape": list(array.shape),
                "data": [x.decode() if isinstance(x, bytes) else x for x in flat],
            }
        answers.append({
            "sent_raw": sent_raw,
            "raw_output_contents": len(response.raw_output_contents),
            "model_version": response.model_version,
            "outputs": outputs,
        })
    client.close()
    print(json.dumps(answers))
    """
)


def triton_grpc(served: Served, calls: list[list[dict]]) -> list[dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            TRITON_GRPC,
            str(served.predictor.grpc_port),
            TOKEN,
            served.name,
            json.dumps(calls),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAS_TRITON_GRPC, reason="tritonclient[grpc] is not installed")
@pytest.mark.parametrize("table", ["penguins", "diabetes"])
def test_tritonclient_grpc_raw_contents(tables, table):
    served = tables[table]
    rows = served.rows
    calls = [column_inputs(served, rows)]
    if not served.classifier:
        calls.append([matrix_input(rows, DIABETES_COLUMNS)])
    bad_datatype = [
        dict(t, datatype="FP32", data=[1.0] * len(rows)) if t["datatype"] == "BYTES" else t
        for t in column_inputs(served, rows)
    ]
    unknown = [*column_inputs(served, rows), dict(column_inputs(served, rows)[0], name="wings")]
    calls += [unknown, bad_datatype] if served.classifier else [unknown]
    answers = triton_grpc(served, calls)
    for answer in answers:
        assert answer["sent_raw"] is True  # raw_input_contents, no typed contents
    good = answers[: 1 if served.classifier else 2]
    for answer in good:
        assert answer["model_version"] == served.version
        outputs = answer["outputs"]
        assert answer["raw_output_contents"] == len(outputs)  # raw in -> raw out
        arrays = {
            name: np.array(
                o["data"], dtype=o["dtype"] if o["dtype"] != "object" else object
            ).reshape(o["shape"])
            for name, o in outputs.items()
        }
        check(from_arrays(arrays, served, len(rows)), served)
    errors = answers[len(good) :]
    assert errors[0]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "unknown column(s) 'wings'" in errors[0]["error"]
    if served.classifier:
        assert errors[1]["status"] == "StatusCode.INVALID_ARGUMENT"
        assert "inputs[island].datatype" in errors[1]["error"]


# --- bad input: 400 naming the field, never 500 ----------------------------------------------
def _penguin_row(**changes) -> dict:
    row = {
        "island": "Biscoe",
        "bill_length_mm": 45.0,
        "bill_depth_mm": 15.0,
        "flipper_length_mm": 215.0,
        "body_mass_g": 5000.0,
        "sex": "male",
        "year": 2008,
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not ...}


BAD_V1 = [
    ("unknown column", [_penguin_row(wings=2)], "instances[0]: unknown column(s) 'wings'"),
    ("missing column", [_penguin_row(island=...)], "instances[0]: missing column(s) 'island'"),
    (
        "string in a numeric column",
        [_penguin_row(), _penguin_row(bill_length_mm="long")],
        "instances[1].bill_length_mm must be a number or null, got 'long'",
    ),
    (
        "list in a categorical column",
        [_penguin_row(island=["Biscoe"])],
        "instances[0].island must be a single value",
    ),
    ("empty instances", [], "instances is empty"),
    ("instance not an object", [42], "instances[0] must be an object of column: value"),
    ("instance a list", [["Biscoe", 45.0]], "instances[0] must be an object of column: value"),
]


@pytest.mark.parametrize(("case", "instances", "message"), BAD_V1, ids=[c[0] for c in BAD_V1])
def test_bad_v1_rows_are_a_400_naming_the_field(penguins, case, instances, message):
    response = v1(penguins, instances)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_bad_v1_bodies_are_a_400(penguins):
    for body, message in [
        (b'{"instances": {"island": "Biscoe"}}', '"instances" must be a list'),
        (b'{"rows": []}', "missing"),
    ]:
        response = post(penguins, "/v1/models/penguins:predict", body)
        assert response.status_code == 400, response.text
        assert message in response.json()["error"]


def penguin_inputs(rows=None, **changes) -> list[dict]:
    """v2 inputs for penguin rows; ``changes`` replace (a dict), drop (...) or add an input."""
    rows = rows or [_penguin_row(), _penguin_row(island="Dream", sex="female")]
    inputs = {
        column: {
            "name": column,
            "datatype": "BYTES" if column in ("island", "sex") else "FP32",
            "shape": [len(rows)],
            "data": [row[column] for row in rows],
        }
        for column in rows[0]
    }
    for column, change in changes.items():
        if change is ...:
            inputs.pop(column)
        else:
            inputs[column] = {**inputs.get(column, {"name": column}), **change}
    return list(inputs.values())


BAD_V2_PENGUINS = [
    (
        "unknown column",
        penguin_inputs(wings={"datatype": "FP32", "shape": [2], "data": [1, 2]}),
        "inputs: unknown column(s) 'wings'; the model takes island, bill_length_mm",
    ),
    ("missing column", penguin_inputs(island=...), "inputs: missing column(s) 'island'"),
    (
        "string in an FP32 column",
        penguin_inputs(bill_length_mm={"data": [45.0, "long"]}),
        "inputs[bill_length_mm] has unreadable FP32 data",
    ),
    (
        "number as text in an FP32 column",
        penguin_inputs(bill_length_mm={"data": [45.0, "46.0"]}),
        "inputs[bill_length_mm] has unreadable FP32 data: item 1 is '46.0', not a number",
    ),
    (
        "fraction in an INT64 column",
        penguin_inputs(year={"datatype": "INT64", "data": [2008, 2008.5]}),
        "inputs[year] has unreadable INT64 data: item 1 is 2008.5, not an integer",
    ),
    (
        "out of a UINT8's range",
        penguin_inputs(year={"datatype": "UINT8", "data": [2008, 2009]}),
        "inputs[year] has unreadable UINT8 data: item 0 is 2008, outside UINT8's range 0..255",
    ),
    (
        "null in an INT64 column",
        penguin_inputs(year={"datatype": "INT64", "data": [2008, None]}),
        "inputs[year] has unreadable INT64 data: item 1 is null",
    ),
    (
        "BYTES for a numeric column",
        penguin_inputs(bill_length_mm={"datatype": "BYTES", "data": ["45", "46"]}),
        "inputs[bill_length_mm].datatype must be one of",
    ),
    (
        "FP32 for a categorical column",
        penguin_inputs(island={"datatype": "FP32", "data": [1.0, 2.0]}),
        "inputs[island].datatype must be one of ['BYTES'] for a categorical column",
    ),
    (
        "not an OIP datatype",
        penguin_inputs(year={"datatype": "INT128"}),
        "INT128",
    ),
    (
        "mismatched row counts",
        penguin_inputs(sex={"shape": [3], "data": ["male", "female", "male"]}),
        "inputs[sex] has 3 rows; other inputs have 2",
    ),
    (
        "shape and data disagree",
        penguin_inputs(year={"shape": [3]}),
        "inputs[year].shape [3] does not match its 2 data items",
    ),
    (
        "a matrix per column",
        penguin_inputs(year={"shape": [1, 2]}),
        "inputs[year].shape must be [n] or [n, 1]",
    ),
    (
        "empty",
        penguin_inputs(
            rows=[dict.fromkeys(_penguin_row())],
            **{c: {"shape": [0], "data": []} for c in _penguin_row()},
        ),
        "inputs is empty",
    ),
    ("no inputs", [], 'missing "inputs"'),
]


@pytest.mark.parametrize(
    ("case", "inputs", "message"), BAD_V2_PENGUINS, ids=[c[0] for c in BAD_V2_PENGUINS]
)
def test_bad_v2_penguin_inputs_are_a_400_naming_the_field(penguins, case, inputs, message):
    response = v2(penguins, inputs)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


BAD_V2_DIABETES = [
    (
        "matrix one column short",
        {"name": "features", "datatype": "FP32", "shape": [1, 9], "data": [[1.0] * 9]},
        "inputs[features].shape must be [n, 10] (columns age, sex, bmi",
    ),
    (
        "BYTES matrix",
        {"name": "features", "datatype": "BYTES", "shape": [1, 10], "data": [["1"] * 10]},
        'inputs[features].datatype must be numeric (e.g. "FP32"), got "BYTES"',
    ),
    (
        "empty matrix",
        {"name": "features", "datatype": "FP32", "shape": [0, 10], "data": []},
        "inputs[features] is empty",
    ),
]


@pytest.mark.parametrize(
    ("case", "tensor", "message"), BAD_V2_DIABETES, ids=[c[0] for c in BAD_V2_DIABETES]
)
def test_bad_v2_matrix_is_a_400_naming_the_field(diabetes, case, tensor, message):
    response = v2(diabetes, [tensor])
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_bad_v1_regression_row_is_a_400(diabetes):
    row = dict(diabetes.rows[0], bmi="fat")
    response = v1(diabetes, [row])
    assert response.status_code == 400, response.text
    assert "instances[0].bmi must be a number or null, got 'fat'" in response.json()["error"]


def test_bad_binary_inputs_are_a_400_naming_the_field(penguins):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{penguins.predictor.http_port}")
    try:
        tensors = []
        for tensor in penguin_inputs(island={"datatype": "FP32", "data": [1.0, 2.0]}):
            infer_input = httpclient.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            infer_input.set_data_from_numpy(as_numpy(tensor))
            tensors.append(infer_input)
        with pytest.raises(InferenceServerException) as raised:
            client.infer("penguins", tensors, headers=dict(AUTH))
        assert raised.value.status() == "400"
        assert "inputs[island].datatype must be one of ['BYTES']" in raised.value.message()
    finally:
        client.close()


def test_infinite_binary_cell_is_a_400_naming_the_cell(diabetes):
    """JSON cannot carry infinity; the binary extension can, and the codec refuses it."""
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{diabetes.predictor.http_port}")
    try:
        matrix = as_numpy(matrix_input(diabetes.rows[:2], DIABETES_COLUMNS))
        matrix[1, 2] = np.inf
        tensor = httpclient.InferInput("features", list(matrix.shape), "FP32")
        tensor.set_data_from_numpy(matrix)
        with pytest.raises(InferenceServerException) as raised:
            client.infer("diabetes", [tensor], headers=dict(AUTH))
        assert raised.value.status() == "400"
        assert "inputs[features][1][2] must be a finite number" in raised.value.message()
    finally:
        client.close()


BAD_GRPC = [
    (
        "unknown column",
        penguin_inputs(wings={"datatype": "FP32", "shape": [2], "data": [1, 2]}),
        "unknown column(s) 'wings'",
    ),
    ("missing column", penguin_inputs(sex=...), "missing column(s) 'sex'"),
    (
        "BYTES for a numeric column",
        penguin_inputs(bill_depth_mm={"datatype": "BYTES", "data": ["15", "16"]}),
        "inputs[bill_depth_mm].datatype must be one of",
    ),
    (
        "mismatched row counts",
        penguin_inputs(sex={"shape": [1], "data": ["male"]}),
        "inputs[sex] has 1 rows; other inputs have 2",
    ),
    (
        "out of a UINT8's range",
        penguin_inputs(year={"datatype": "UINT8", "data": [2008, 2009]}),
        "inputs[year] has unreadable UINT8 data: item 0 is 2008, outside UINT8's range",
    ),
]


@pytest.mark.parametrize(("case", "inputs", "message"), BAD_GRPC, ids=[c[0] for c in BAD_GRPC])
def test_bad_grpc_inputs_are_invalid_argument(penguins, stubs, case, inputs, message):
    request = pb.ModelInferRequest(model_name="penguins", inputs=[grpc_tensor(t) for t in inputs])
    with pytest.raises(grpc.RpcError) as raised:
        stubs["penguins"].ModelInfer(request, metadata=GRPC_AUTH, timeout=20)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in raised.value.details()


def test_server_survives_bad_input(tables):
    for served in tables.values():
        assert served.predictor.process.poll() is None
        assert v1(served, served.rows[:1]).status_code == 200


# --- feedback ---------------------------------------------------------------------------
def test_numeric_feedback_is_stored(diabetes):
    http = diabetes.http
    request_id = v1(diabetes, diabetes.rows[:1]).json()["request_id"]
    # immediately after predict: the row may still be queued, feedback must find it
    stored = http.post(f"/v1/feedback/{request_id}", json={"value": 151.0}, headers=AUTH)
    assert stored.status_code == 200, stored.text
    assert stored.json()["value"] == 151.0 and stored.json()["label"] is None

    not_a_number = http.post(f"/v1/feedback/{request_id}", json={"value": "abc"}, headers=AUTH)
    assert not_a_number.status_code == 422, not_a_number.text
    assert "value" in not_a_number.json()["detail"]
    assert "number" in not_a_number.json()["detail"]
    as_label = http.post(f"/v1/feedback/{request_id}", json={"label": "high"}, headers=AUTH)
    assert as_label.status_code == 422, as_label.text

    by_v2 = v2(diabetes, [matrix_input(diabetes.rows[:2], DIABETES_COLUMNS)]).json()["id"]
    batch = http.post(
        "/v1/feedback",
        json={"items": [{"request_id": by_v2, "value": 75}]},
        headers=AUTH,
    )
    assert batch.status_code == 200, batch.text

    store = PredictionStore(diabetes.store_url)
    try:
        history = store.feedback_history(request_id)
        assert [f.value for f in history] == [151.0]  # the refused ones wrote nothing
        prediction = store.get_prediction(request_id)
        assert prediction.model_version == diabetes.version
        assert prediction.inputs == diabetes.rows[:1]
        assert set(prediction.outputs[0]) == {"prediction"}
        assert [f.value for f in store.feedback_history(by_v2)] == [75.0]
    finally:
        store.close()


def test_label_feedback_for_the_classifier(penguins):
    http = penguins.http
    body = v1(penguins, penguins.rows[:1]).json()
    request_id, predicted = body["request_id"], body["predictions"][0]["label"]
    other = next(c for c in PENGUIN_CLASSES if c != predicted)

    unknown = http.post(f"/v1/feedback/{request_id}", json={"label": "Emperor"}, headers=AUTH)
    assert unknown.status_code == 422, unknown.text
    assert "Emperor" in unknown.text and str(PENGUIN_CLASSES) in unknown.text
    as_value = http.post(f"/v1/feedback/{request_id}", json={"value": "Emperor"}, headers=AUTH)
    assert as_value.status_code == 422 and "value" in as_value.json()["detail"]
    number = http.post(f"/v1/feedback/{request_id}", json={"value": 3.5}, headers=AUTH)
    assert number.status_code == 422, number.text

    right = http.post(f"/v1/feedback/{request_id}", json={"label": predicted}, headers=AUTH)
    assert right.status_code == 200 and right.json()["correct"] is True
    wrong = http.post(f"/v1/feedback/{request_id}", json={"value": other}, headers=AUTH)
    assert wrong.status_code == 200 and wrong.json()["correct"] is False

    store = PredictionStore(penguins.store_url)
    try:
        history = store.feedback_history(request_id)
        assert [(f.value, f.label, f.correct) for f in history] == [
            (predicted, predicted, True),
            (other, other, False),
        ]
    finally:
        store.close()


# --- metadata ---------------------------------------------------------------------------
def test_metadata_lists_the_columns(penguins, diabetes, stubs):
    metadata = penguins.http.get("/v2/models/penguins", headers=AUTH).json()
    assert metadata["versions"] == [penguins.version]
    assert metadata["inputs"] == PENGUIN_INPUTS
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities", "low_confidence"]
    assert [o["datatype"] for o in metadata["outputs"]] == ["BYTES", "FP32", "BOOL"]

    metadata = diabetes.http.get("/v2/models/diabetes", headers=AUTH).json()
    assert metadata["inputs"] == [
        {"name": column, "datatype": "FP32", "shape": [-1]} for column in DIABETES_COLUMNS
    ]
    assert metadata["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]

    over_grpc = stubs["penguins"].ModelMetadata(
        pb.ModelMetadataRequest(name="penguins"), metadata=GRPC_AUTH, timeout=10
    )
    assert [(i.name, i.datatype) for i in over_grpc.inputs] == [
        (i["name"], i["datatype"]) for i in PENGUIN_INPUTS
    ]
