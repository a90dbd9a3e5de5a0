"""The real predictor (KServe ModelServer subprocess on loopback) driven by the standard Open
Inference Protocol clients as they send by default: tritonclient.http (BYTES inputs in the
binary tensor extension, binary outputs on request) and tritonclient.grpc (raw_input_contents).

tritonclient.grpc runs in a child process: its generated protos and KServe's both register the
``inference.*`` messages in protobuf's default pool, so one process cannot import both
("duplicate symbol 'inference.ServerLiveRequest'")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import orjson
import pytest
from kserve.protocol.infer_type import serialize_byte_tensor

from tests.integration.conftest_serving import register_text_model, running_predictor, v2_body

httpclient = pytest.importorskip("tritonclient.http")
if importlib.util.find_spec("tritonclient.grpc") is None:
    pytest.skip("tritonclient[grpc] is not installed", allow_module_level=True)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "oip-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEXTS = ["great product, works perfectly", "awful quality and slow delivery"]
EXPECTED = [b"positive", b"negative"]
CLASSES = ["negative", "positive"]
OUTPUTS = ("label", "probabilities", "low_confidence")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("oip-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, "sentiment")
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_API_TOKEN": TOKEN,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    with running_predictor("sentiment", home, env=env) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=10) as http:
            reference = http.post("/v2/models/sentiment/infer", json=v2_body(TEXTS), headers=AUTH)
            assert reference.status_code == 200, reference.text
            outputs = {o["name"]: o for o in reference.json()["outputs"]}
            probabilities = np.array(outputs["probabilities"]["data"], dtype=np.float32)
            yield {
                "predictor": predictor,
                "http": http,
                "version": version,
                "probabilities": probabilities.reshape(len(TEXTS), len(CLASSES)),
            }


def text_input(module):
    tensor = module.InferInput("text", [len(TEXTS)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=np.object_))
    return tensor


def check_result(result, served, labels_param):
    labels = result.as_numpy("label").reshape(-1).tolist()  # str from JSON data, bytes from binary
    assert [x.encode() if isinstance(x, str) else x for x in labels] == EXPECTED
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities, served["probabilities"], rtol=1e-6)
    assert probabilities[0, 1] > 0.5 > probabilities[1, 1]
    assert result.as_numpy("low_confidence").dtype == np.bool_
    assert labels_param == CLASSES


def http_client(served):
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{served['predictor'].http_port}")


def test_tritonclient_http_binary_bytes_input_json_outputs(served):
    client = http_client(served)
    try:
        outputs = [httpclient.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]
        result = client.infer("sentiment", [text_input(httpclient)], outputs=outputs, headers=AUTH)
        response = result.get_response()
        assert all("data" in o for o in response["outputs"])
        assert response["model_version"] == served["version"]
        check_result(result, served, response["parameters"]["labels"])
    finally:
        client.close()


def test_tritonclient_http_binary_outputs(served):
    client = http_client(served)
    try:
        # no outputs named: tritonclient asks binary_data_output=true for all of them
        result = client.infer("sentiment", [text_input(httpclient)], headers=AUTH)
        response = result.get_response()
        assert all(o["parameters"]["binary_data_size"] > 0 for o in response["outputs"])
        assert all("data" not in o for o in response["outputs"])
        check_result(result, served, response["parameters"]["labels"])

        # per-output choice: binary probabilities, JSON labels; only the named outputs return
        outputs = [
            httpclient.InferRequestedOutput("label", binary_data=False),
            httpclient.InferRequestedOutput("probabilities", binary_data=True),
        ]
        mixed = client.infer("sentiment", [text_input(httpclient)], outputs=outputs, headers=AUTH)
        by_name = {o["name"]: o for o in mixed.get_response()["outputs"]}
        assert set(by_name) == {"label", "probabilities"}
        assert by_name["label"]["data"] == ["positive", "negative"]
        assert "data" not in by_name["probabilities"]
        np.testing.assert_allclose(
            mixed.as_numpy("probabilities"), served["probabilities"], rtol=1e-6
        )
    finally:
        client.close()


GRPC_CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.grpc as grpcclient

    port, token, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    tensor = grpcclient.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=np.object_))
    result = client.infer("sentiment", [tensor], headers={"authorization": f"Bearer {token}"})
    response = result.get_response()
    probabilities = result.as_numpy("probabilities")
    low = result.as_numpy("low_confidence")
    print(json.dumps({
        # what the client put on the wire: raw_input_contents, no typed contents
        "sent_raw": bool(tensor._get_content()) and not tensor._get_tensor().HasField("contents"),
        "labels": [x.decode() for x in result.as_numpy("label").reshape(-1)],
        "probabilities": probabilities.tolist(),
        "probabilities_dtype": str(probabilities.dtype),
        "low_confidence": low.tolist(),
        "low_confidence_dtype": str(low.dtype),
        "raw_output_contents": len(response.raw_output_contents),
        "labels_param": response.parameters["labels"].string_param,
        "model_version": response.model_version,
        "id": response.id,
    }))
    client.close()
    """
)


def test_tritonclient_grpc_raw_input_contents(served):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            GRPC_CLIENT,
            str(served["predictor"].grpc_port),
            TOKEN,
            json.dumps(TEXTS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sent_raw"] is True
    assert result["labels"] == [e.decode() for e in EXPECTED]
    assert result["probabilities_dtype"] == "float32" and result["low_confidence_dtype"] == "bool"
    np.testing.assert_allclose(result["probabilities"], served["probabilities"], rtol=1e-6)
    assert len(result["low_confidence"]) == len(TEXTS)
    assert result["raw_output_contents"] == len(OUTPUTS)  # raw in -> raw out, every output
    assert json.loads(result["labels_param"]) == CLASSES
    assert result["model_version"] == served["version"] and result["id"]


def test_bad_binary_body_is_a_400_naming_the_field(served):
    header = {
        "inputs": [
            {
                "name": "text",
                "datatype": "BYTES",
                "shape": [3],
                "parameters": {"binary_data_size": 12},
            }
        ]
    }
    head = orjson.dumps(header)
    raw = serialize_byte_tensor(np.array([b"ab", b"cd"], dtype=np.object_)).item()
    response = served["http"].post(
        "/v2/models/sentiment/infer",
        content=head + raw,
        headers={
            **AUTH,
            "Inference-Header-Content-Length": str(len(head)),
            "content-type": "application/octet-stream",
        },
    )
    assert response.status_code == 400, response.text
    assert "inputs[text].shape [3] does not match its 2 data items" in response.text
