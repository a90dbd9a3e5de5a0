"""Detection: the canvas generator, mAP50 (pycocotools), both detectors, the codec, the
feedback and the ``task=detection`` blueprint, at tiny sizes (a few seconds in all)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.blueprints.codec import InputError, InputTensor
from driftloop.blueprints.feedback import FeedbackError
from driftloop.blueprints.vision.blueprint import VisionBlueprint
from driftloop.blueprints.vision.detection import (
    CenterNetDetector,
    ComponentsDetector,
    detection_scores,
    score_detector,
)
from driftloop.blueprints.vision.detection_blueprint import DetectionBlueprint
from driftloop.blueprints.vision.detection_data import (
    CanvasSpec,
    detection_frame,
    make_canvases,
    parse_objects,
)
from driftloop.datasets.images import frame_pixels


def squares(count: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of 12x12 sources on black: a filled square and a hollow one."""
    filled = np.zeros((12, 12), dtype=np.uint8)
    filled[2:10, 2:10] = 220
    hollow = filled.copy()
    hollow[4:8, 4:8] = 0
    images = np.stack([filled if i % 2 else hollow for i in range(count)])
    labels = np.array(["filled" if i % 2 else "hollow" for i in range(count)])
    return images, labels


SPEC = CanvasSpec(size=32, max_objects=2, scale=(1.0, 1.0), max_overlap=0.0)


def test_canvases_are_seeded_and_their_boxes_are_tight():
    images, labels = squares()
    first, objects = make_canvases(images, labels, 20, SPEC, seed=3)
    again, same = make_canvases(images, labels, 20, SPEC, seed=3)
    other, _ = make_canvases(images, labels, 20, SPEC, seed=4)
    assert np.array_equal(first, again) and objects == same
    assert not np.array_equal(first, other)
    assert first.shape == (20, 32, 32, 1)
    for canvas, placed in zip(first, objects, strict=True):
        assert 1 <= len(placed) <= 2
        for obj in placed:
            x0, y0, x1, y1 = obj["box"]
            assert (x1 - x0, y1 - y0) == (8, 8)  # the square's pixels, not the 12x12 source
            assert canvas[y0:y1, x0:x1].min() == 0 or obj["label"] == "filled"
            assert canvas[y0:y1, x0:x1].max() == 220
        # outside every box the canvas is black
        outside = np.ones((32, 32), dtype=bool)
        for obj in placed:
            x0, y0, x1, y1 = obj["box"]
            outside[y0:y1, x0:x1] = False
        assert canvas[..., 0][outside].max() == 0
    frame = detection_frame(first, objects)
    assert frame["id"].str.startswith("img-").all()
    assert [json.loads(v) for v in frame["objects"]][: len(frame)] == objects[: len(frame)]


def test_objects_are_checked_by_field():
    assert parse_objects('[{"box": [1, 2, 5, 6], "label": "a"}]') == [
        {"box": [1.0, 2.0, 5.0, 6.0], "label": "a"}
    ]
    with pytest.raises(ValueError, match=r"objects\[0\]\.box"):
        parse_objects([{"box": [5, 2, 1, 6], "label": "a"}])
    with pytest.raises(ValueError, match="not JSON"):
        parse_objects("[{")


def detections(*items):
    return {
        "boxes": np.array([b for b, _, _ in items], dtype=np.float32).reshape(-1, 4),
        "labels": [label for _, label, _ in items],
        "scores": np.array([s for _, _, s in items], dtype=np.float32),
    }


def test_map50_counts_a_box_right_at_iou_one_half_and_the_class():
    truths = [[{"box": [0, 0, 10, 10], "label": "a"}], [{"box": [20, 20, 30, 30], "label": "b"}]]
    perfect = [detections(([0, 0, 10, 10], "a", 0.9)), detections(([20, 20, 30, 30], "b", 0.8))]
    assert detection_scores(truths, perfect)["map50"] == pytest.approx(1.0)
    # IoU 0.625 still counts at 0.5 (not from 0.65 up: mAP50:95 drops to 0.3)
    loose = [detections(([0, 0, 10, 16], "a", 0.9)), detections(([20, 20, 30, 36], "b", 0.8))]
    scores = detection_scores(truths, loose)
    assert scores["map50"] == pytest.approx(1.0) and scores["map"] == pytest.approx(0.3)
    # IoU 1/3 misses; the right box with the wrong class misses
    shifted = [detections(([5, 0, 15, 10], "a", 0.9)), detections(([20, 20, 30, 30], "a", 0.8))]
    assert detection_scores(truths, shifted)["map50"] == pytest.approx(0.0)
    nothing = [detections(), detections()]
    assert detection_scores(truths, nothing)["map50"] == 0.0


@pytest.fixture(scope="module")
def canvases():
    images, labels = squares(400)
    pixels, objects = make_canvases(images, labels, 160, SPEC, seed=0)
    return detection_frame(pixels, objects)


def test_components_baseline_finds_separate_objects(canvases):
    X, y = frame_pixels(canvases), canvases["objects"].tolist()
    model = ComponentsDetector(min_pixels=10).fit(X, y)
    # the squares never overlap (max_overlap 0): every one is its own component
    assert score_detector(model, X, y)["map50"] > 0.95


@pytest.mark.slow
def test_centernet_learns_the_squares_and_pickles_as_weights(canvases):
    X, y = frame_pixels(canvases), canvases["objects"].tolist()
    model = CenterNetDetector(max_iter=6, width=8, batch_size=16, learning_rate=5e-3)
    model.fit(X, y)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert score_detector(model, X, y)["map50"] > 0.5
    restored = pickle.loads(pickle.dumps(model))
    assert "net_state_" in pickle.dumps(model).decode("latin-1")
    first, second = model.detect(X[:5]), restored.detect(X[:5])
    for a, b in zip(first, second, strict=True):
        assert a["labels"] == b["labels"]
        np.testing.assert_allclose(a["boxes"], b["boxes"], atol=1e-4)
    decoded = json.loads(model.predict(X[:1])[0])
    assert {"box", "label", "score"} <= set(decoded[0])


def test_task_option_picks_the_detection_blueprint_and_round_trips():
    blueprint = get_blueprint(BlueprintSpec("vision", {"task": "detection", "max_rows": 10}))
    assert isinstance(blueprint, DetectionBlueprint)
    assert blueprint.primary_metric == "map50" and blueprint.greater_is_better
    assert isinstance(get_blueprint(blueprint.spec.to_text()), DetectionBlueprint)
    assert DetectionBlueprint().spec.options["task"] == "detection"
    assert type(get_blueprint("vision")) is VisionBlueprint
    with pytest.raises(ValueError, match="--task: the vision blueprint does"):
        get_blueprint(BlueprintSpec("vision", {"task": "regression"}))
    with pytest.raises(ValueError, match="canvas_size"):
        DetectionBlueprint(canvas_size=30)


def test_codec_pads_detections_and_feedback_scores_map50(canvases):
    blueprint = DetectionBlueprint(canvas_size=32)
    X, y = frame_pixels(canvases), canvases["objects"].tolist()
    model = ComponentsDetector(min_pixels=10).fit(X, y)
    codec = blueprint.codec(model)
    batch = codec.decode_v2({"image": InputTensor("image", "UINT8", X[:4, ..., 0])})
    answer = codec.predict(batch)
    tensors = {name: (datatype, array) for name, datatype, array in answer.tensors}
    counts = tensors["num_detections"][1]
    k = int(counts.max())
    assert tensors["boxes"][1].shape == (4, k, 4) and tensors["labels"][1].shape == (4, k)
    assert tensors["scores"][0] == "FP32" and tensors["labels"][0] == "BYTES"
    for i, instance in enumerate(answer.instances):
        assert len(instance["boxes"]) == len(instance["labels"]) == counts[i]
        assert list(tensors["labels"][1][i, counts[i] :]) == [""] * (k - counts[i])
        assert answer.labels[i] == instance["labels"][0]
    with pytest.raises(InputError, match=r"inputs\[image\]\.shape"):
        codec.decode_v2({"image": InputTensor("image", "UINT8", X[:1, :16, :16, 0])})

    feedback = blueprint.feedback
    truths = [parse_objects(t) for t in y[:4]]
    stored, correct = feedback.parse(y[0], answer.instances[:1])
    assert stored == truths[0] and correct is None
    assert feedback.live_score(answer.instances, truths) > 0.9
    with pytest.raises(FeedbackError, match="box"):
        feedback.parse([{"label": "filled"}], answer.instances[:1])

    featurizer = blueprint.drift_featurizer(model, canvases.head(40))
    groups = featurizer.transform(batch.model_input, answer.instances)
    assert groups["image_stats"].shape == (4, 4) and groups["embedding"].shape == (4, 8)
    np.testing.assert_array_equal(groups["detections"][:, 0], counts)
    assert featurizer.knows(answer.instances[0]) and not featurizer.knows({"label": "x"})

    rows = blueprint.rows_from_feedback(batch.summaries, y[:4])
    assert np.array_equal(frame_pixels(rows), X[:4])
    expected: dict[str, int] = {}
    for value in y:
        for obj in parse_objects(value):
            expected[obj["label"]] = expected.get(obj["label"], 0) + 1
    assert blueprint.validate(canvases)["objects"] == expected


def test_padded_v2_answers_read_back_as_the_v1_instances(canvases):
    """The predictor's v2 body of a detection answer, read by the generic client (what
    smoke-serve compares with v1) and by the monitor, gives the v1 instances exactly."""
    from driftloop.blueprints.vision.detection_codec import detection_answer
    from driftloop.monitor.events import response_outputs
    from driftloop.serving.client import parse_v2

    found = [
        {"boxes": np.array([[1, 2, 9, 9.5], [3, 3, 8, 8]]), "labels": ["a", "b"],
         "scores": np.array([0.9, 0.3])},
        {"boxes": np.zeros((0, 4)), "labels": [], "scores": np.zeros(0)},
        {"boxes": np.array([[0, 0, 4, 4]]), "labels": ["b"], "scores": np.array([0.7])},
    ]  # fmt: skip
    answer = detection_answer(found)
    body = {
        "id": "r-1",
        "model_name": "m",
        "outputs": [
            {"name": n, "datatype": d, "shape": list(a.shape), "data": a.reshape(-1).tolist()}
            for n, d, a in answer.tensors
        ],
        "parameters": answer.parameters,
    }
    assert [p.output for p in parse_v2(body, [0, 1, 2])] == answer.instances
    assert response_outputs(body) == answer.instances
    assert answer.instances[1] == {"boxes": [], "labels": [], "scores": [], "num_detections": 0}
    assert answer.instances[2]["labels"] == ["b"]  # one detection is still a list


def test_an_image_folder_becomes_detection_canvases(tmp_path):
    from tests.unit.test_vision_data import write_shapes_folder

    root = write_shapes_folder(tmp_path / "shapes", per_class=6)
    blueprint = DetectionBlueprint(max_rows=12, canvas_size=32, max_objects=2)
    instance, dataset, _ = blueprint.prepare(None, str(root))
    assert instance is blueprint and dataset == "images"
    frame = blueprint.load(dataset, str(root))
    report = blueprint.validate(frame)
    assert report["image_shape"] == [32, 32, 1] and report["rows"] == len(frame) <= 12
    assert set(report["objects"]) <= {"circle", "square", "cross"}
    assert sum(report["objects"].values()) >= len(frame)  # at least one object per canvas
    # the same folder and seed give the same canvases (content-hash ids)
    assert blueprint.load(dataset, str(root))["id"].tolist() == frame["id"].tolist()
