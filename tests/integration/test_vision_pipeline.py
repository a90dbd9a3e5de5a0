"""`driftloop train vision --data FOLDER` end to end, then the champion served for real.

A tiny image folder made here (3 classes x 70 16x16 shapes) runs the real
training pipeline through kfp.local (ingest → validate → split → CNN and pixel
baselines → evaluate → register → smoke-serve → gate → drift reference →
promote) against a private sqlite MLflow. The registered champion is then
served by ``driftloop serve vision`` (KServe ModelServer on 127.0.0.1) and every
image form a client may send answers what the registered model itself says:
v1 ``{"b64": ...}``, v2 JSON UINT8 [n, H, W], tritonclient.http binary UINT8
[n, H, W, 1] and BYTES (base64 PNG); bad images are HTTP 400 naming the field,
and a label fed back is stored.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.integration.conftest_serving import running_predictor
from tests.unit.test_vision_data import write_shapes_folder

httpclient = pytest.importorskip("tritonclient.http")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
TOKEN = "v1s10n"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(summary JSON of the pipeline run, env of its private home, the shapes folder)."""
    base = tmp_path_factory.mktemp("vision-pipeline")
    home = base / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DRIFTLOOP_TRACKING_URI", "DRIFTLOOP_STORE_URL", "DRIFTLOOP_API_TOKEN")
    }
    env |= {"DRIFTLOOP_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
    folder = write_shapes_folder(base / "shapes", per_class=70)
    result = subprocess.run(
        [DRIFTLOOP, "train", "vision", "--data", str(folder), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout), env, home


def test_folder_trains_registers_and_is_promoted(trained):
    summary, env, _ = trained
    print("\nvision on 210 shapes:", json.dumps(summary["test_metrics"]), summary["timings"])
    assert summary["version"] == "1" and summary["decision"] == "promote"
    assert summary["primary_metric"] == "accuracy"
    assert {c["name"] for c in summary["candidates"]} == {"cnn", "logreg", "mlp"}
    assert list(summary["timings"]) == [
        "ingest", "validate", "split", "train", "evaluate", "register",
        "smoke-serve", "promote-challenger", "gate", "fit-drift-reference", "promote",
    ]  # fmt: skip
    # three easy classes (chance 0.33): the winner is clearly above chance on its test split
    assert summary["test_metrics"]["accuracy"] >= 0.6

    from driftloop.registry import ModelRegistry

    registry = ModelRegistry(env["MLFLOW_TRACKING_URI"])
    version = registry.get_version("vision", "1")
    assert json.loads(version.tags["driftloop.blueprint"])["name"] == "vision"
    assert version.tags.get("driftloop.split.test_fingerprint")
    assert version.tags.get("driftloop.drift_reference")


def _png_b64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_champion_serves_every_image_form(trained):
    summary, env, home = trained
    from driftloop.blueprints import get_blueprint
    from driftloop.datasets.images import load_image_folder
    from driftloop.training.model_logging import load_native

    model = load_native("models:/vision@champion", tracking_uri=env["MLFLOW_TRACKING_URI"])
    blueprint = get_blueprint("vision")
    frame = load_image_folder(home.parent / "shapes").head(4)
    pixels = blueprint.features(frame)
    expected = model.predict_proba(pixels)
    labels = [str(model.classes_[i]) for i in expected.argmax(axis=1)]
    store_url = f"sqlite:///{home / 'store.db'}"
    predictor_env = env | {"DRIFTLOOP_STORE_URL": store_url, "DRIFTLOOP_API_TOKEN": TOKEN}
    with running_predictor("vision", home, env=predictor_env) as predictor:
        http = httpx.Client(base_url=predictor.url, headers=AUTH, timeout=30)
        metadata = http.get("/v2/models/vision").json()
        assert metadata["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]

        v1 = http.post(
            "/v1/models/vision:predict",
            json={"instances": [{"b64": _png_b64(p)} for p in pixels]},
        )
        assert v1.status_code == 200, v1.text
        predictions = v1.json()["predictions"]
        assert [p["label"] for p in predictions] == labels
        got = [[p["probabilities"][c] for c in model.classes_] for p in predictions]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)

        uint8 = {"name": "image", "datatype": "UINT8", "shape": [4, 16, 16]}
        v2 = http.post(
            "/v2/models/vision/infer",
            json={"inputs": [uint8 | {"data": pixels[..., 0].reshape(-1).tolist()}]},
        )
        assert v2.status_code == 200, v2.text
        outputs = {o["name"]: o for o in v2.json()["outputs"]}
        assert outputs["label"]["data"] == labels
        np.testing.assert_allclose(
            np.reshape(outputs["probabilities"]["data"], (4, -1)), expected, rtol=1e-4, atol=1e-6
        )

        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{predictor.http_port}")
        try:
            tensor = httpclient.InferInput("image", [4, 16, 16, 1], "UINT8")
            tensor.set_data_from_numpy(pixels)  # binary by default
            result = client.infer("vision", [tensor], headers=dict(AUTH))
            assert [v.decode() for v in result.as_numpy("label")] == labels
            np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-4)
            encoded = httpclient.InferInput("image", [4], "BYTES")
            encoded.set_data_from_numpy(np.array([_png_b64(p) for p in pixels], dtype=object))
            result = client.infer("vision", [encoded], headers=dict(AUTH))
            assert [v.decode() for v in result.as_numpy("label")] == labels
        finally:
            client.close()

        # gRPC: BYTES carry the PNG's raw bytes (REST can only carry base64 text)
        import grpc
        from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        def grpc_request(items: list[bytes]) -> pb.ModelInferRequest:
            tensor = pb.ModelInferRequest.InferInputTensor(
                name="image",
                datatype="BYTES",
                shape=[len(items)],
                contents=pb.InferTensorContents(bytes_contents=items),
            )
            return pb.ModelInferRequest(model_name="vision", inputs=[tensor])

        raw = [base64.b64decode(_png_b64(p)) for p in pixels]
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        with grpc.insecure_channel(f"127.0.0.1:{predictor.grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            response = stub.ModelInfer(grpc_request(raw), metadata=metadata, timeout=30)
            by_name = {o.name: o for o in response.outputs}
            assert [v.decode() for v in by_name["label"].contents.bytes_contents] == labels
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(grpc_request([raw[0][:40]]), metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "inputs[image][0]" in refused.value.details()

        bad = {
            "corrupt": (
                {"instances": [{"b64": base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode()}]},
                "instances[0].b64",
            ),
            "format": ({"instances": [{"b64": base64.b64encode(b"GIF89a...").decode()}]}, "PNG"),
        }
        for case, (body, field) in bad.items():
            response = http.post("/v1/models/vision:predict", json=body)
            assert response.status_code == 400, (case, response.text)
            assert field in response.text and "Traceback" not in response.text
        wrong_shape = http.post(
            "/v2/models/vision/infer",
            json={
                "inputs": [
                    {"name": "image", "datatype": "UINT8", "shape": [1, 8, 8], "data": [0] * 64}
                ]
            },
        )
        assert wrong_shape.status_code == 400 and "inputs[image].shape" in wrong_shape.text
        floats = http.post(
            "/v2/models/vision/infer",
            json={"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0.5]}]},
        )
        assert floats.status_code == 400 and "inputs[image].datatype" in floats.text

        # feedback: the first image's true label is stored, a label the model lacks is refused
        one = http.post(
            "/v1/models/vision:predict", json={"instances": [{"b64": _png_b64(pixels[0])}]}
        )
        request_id = one.json()["request_id"]
        truth = http.post(f"/v1/feedback/{request_id}", json={"label": frame["label"].iloc[0]})
        assert truth.status_code == 200, truth.text
        assert truth.json()["label"] == frame["label"].iloc[0]
        not_a_class = http.post(f"/v1/feedback/{request_id}", json={"label": "hexagon"})
        assert not_a_class.status_code == 422 and "hexagon" in not_a_class.text

    # the stored input becomes a training row with the pixels the model saw
    from driftloop.store import PredictionStore

    store = PredictionStore(store_url)
    try:
        (pair,) = [p for p in store.feedback_pairs("vision") if p.request_id == request_id]
    finally:
        store.close()
    rows = blueprint.rows_from_feedback(pair.inputs, [pair.value])
    np.testing.assert_array_equal(blueprint.features(rows), pixels[:1])
