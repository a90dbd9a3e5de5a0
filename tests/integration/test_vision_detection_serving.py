"""A detector served for real: ``vision`` with ``task=detection`` trained by the shared
``train_candidates`` on 32x32 canvases (a tiny CenterNet: two epochs, width 8),
registered in a private sqlite MLflow with its blueprint tagged, and served by
``driftloop serve`` (a KServe ModelServer on loopback). v1 and v2 answers carry the
registered model's own boxes, labels and scores (v2 padded to [n, k] with
``num_detections``); the metadata declares those outputs; a wrong image size is a
400 naming the input; a feedback of true objects is stored."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from driftloop.blueprints import BlueprintSpec
from driftloop.datasets.images import frame_pixels, png_bytes
from tests.integration.conftest_serving import register_blueprint_model, running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "d3tect"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAME = "canvas-detector"
# 32x32 canvases of 1-2 Fashion-MNIST objects; a few seconds of CPU training
SPEC = BlueprintSpec(
    "vision",
    {"task": "detection", "max_rows": 160, "epochs": 2, "width": 8, "canvas_size": 32,
     "max_objects": 2},
)  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from driftloop.blueprints import get_blueprint

    home = tmp_path_factory.mktemp("detection-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    store_url = f"sqlite:///{home / 'store.db'}"
    blueprint = get_blueprint(SPEC)
    frame = blueprint.load(None, None)
    registered = register_blueprint_model(
        tracking, NAME, SPEC, frame, candidates=["centernet"], home=home
    )
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_STORE_URL": store_url,
        "DRIFTLOOP_API_TOKEN": TOKEN,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    with running_predictor(NAME, home, env=env) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=60, headers=AUTH) as http:
            yield registered, http, store_url


def test_the_torch_detector_was_scored_by_map50(served):
    registered, _, _ = served
    assert registered.blueprint.primary_metric == "map50"
    assert type(registered.model).__name__ == "CenterNetDetector"


def test_metadata_declares_boxes_labels_scores(served):
    _, http, _ = served
    metadata = http.get(f"/v2/models/{NAME}").json()
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in metadata["outputs"]}
    assert outputs == {
        "boxes": ("FP32", [-1, -1, 4]),
        "labels": ("BYTES", [-1, -1]),
        "scores": ("FP32", [-1, -1]),
        "num_detections": ("INT32", [-1]),
    }


def test_v1_and_v2_answer_the_registered_models_detections(served):
    registered, http, _ = served
    pixels = frame_pixels(registered.val.head(3))
    expected = registered.model.detect(pixels)

    b64 = [base64.b64encode(png_bytes(p)).decode("ascii") for p in pixels]
    v1 = http.post(f"/v1/models/{NAME}:predict", json={"instances": [{"b64": v} for v in b64]})
    assert v1.status_code == 200, v1.text
    predictions = v1.json()["predictions"]
    assert len(predictions) == 3
    for answer, truth in zip(predictions, expected, strict=True):
        assert answer["labels"] == truth["labels"]
        np.testing.assert_allclose(answer["boxes"], truth["boxes"].reshape(-1, 4), atol=0.01)
        np.testing.assert_allclose(answer["scores"], truth["scores"], atol=1e-5)

    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "UINT8",
                "shape": [3, *pixels.shape[1:3]],
                "data": pixels[..., 0].reshape(-1).tolist(),
            }
        ]
    }
    v2 = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    counts = outputs["num_detections"]["data"]
    assert counts == [len(t["labels"]) for t in expected]
    k = max(1, *counts)
    assert outputs["boxes"]["shape"] == [3, k, 4]
    assert outputs["labels"]["shape"] == [3, k] and outputs["scores"]["shape"] == [3, k]
    boxes = np.asarray(outputs["boxes"]["data"], dtype=np.float32).reshape(3, k, 4)
    labels = np.asarray(outputs["labels"]["data"], dtype=object).reshape(3, k)
    for i, truth in enumerate(expected):
        n = counts[i]
        assert list(labels[i, :n]) == truth["labels"] and set(labels[i, n:]) <= {""}
        np.testing.assert_allclose(boxes[i, :n], truth["boxes"].reshape(-1, 4), atol=1e-3)


def test_true_objects_fed_back_become_a_training_canvas(served):
    registered, http, store_url = served
    pixels = frame_pixels(registered.val.head(1))
    png = base64.b64encode(png_bytes(pixels[0])).decode("ascii")
    one = http.post(f"/v1/models/{NAME}:predict", json={"instances": [{"b64": png}]})
    assert one.status_code == 200, one.text
    request_id = one.json()["request_id"]
    objects = json.loads(registered.blueprint.targets(registered.val.head(1))[0])
    stored = http.post(f"/v1/feedback/{request_id}", json={"value": objects})
    assert stored.status_code == 200, stored.text
    no_box = http.post(f"/v1/feedback/{request_id}", json={"value": [{"label": "Bag"}]})
    assert no_box.status_code == 422 and "box" in no_box.text

    from driftloop.store import PredictionStore

    store = PredictionStore(store_url)
    try:
        (pair,) = [p for p in store.feedback_pairs(NAME) if p.request_id == request_id]
    finally:
        store.close()
    rows = registered.blueprint.rows_from_feedback(pair.inputs, [pair.value])
    np.testing.assert_array_equal(frame_pixels(rows), pixels)
    assert json.loads(rows["objects"].iloc[0]) == [
        {"box": [float(v) for v in o["box"]], "label": o["label"]} for o in objects
    ]


def test_wrong_image_size_is_a_400_naming_the_input(served):
    _, http, _ = served
    body = {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 28, 28],
                        "data": [0] * 784}]}  # fmt: skip
    answer = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert answer.status_code == 400
    assert "inputs[image].shape" in answer.text and "32" in answer.text
