"""The vision codec, drift featurizer and blueprint data contract on a fitted pixel baseline.

Every accepted form of an image gives the fitted model's own answer; every bad
one is an InputError naming the field; stored summaries come back as training
rows with the pixels the model saw."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.codec import InputError, InputTensor, Limits
from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.images import load_image_folder
from driftloop.serving.wire import json_tensor
from tests.unit.test_vision_data import write_shapes_folder


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    blueprint = get_blueprint("vision")
    root = write_shapes_folder(tmp_path_factory.mktemp("codec") / "shapes", per_class=12)
    frame = load_image_folder(root)
    model = blueprint.candidates(seed=0)["logreg"]
    model.fit(blueprint.features(frame), blueprint.targets(frame))
    return blueprint, model, frame


def encoded(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_every_input_form_gives_the_models_answer(fitted):
    blueprint, model, frame = fitted
    codec = blueprint.codec(model)
    pixels = blueprint.features(frame.head(3))
    expected = model.predict_proba(pixels)
    pngs = [encoded(p) for p in pixels]
    forms = {
        "v2 UINT8 [n,H,W]": codec.decode_v2(
            {"image": InputTensor("image", "UINT8", pixels[..., 0])}
        ),
        "v2 UINT8 [n,H,W,1]": codec.decode_v2({"image": InputTensor("image", "UINT8", pixels)}),
        "v2 BYTES raw": codec.decode_v2(
            {"image": InputTensor("image", "BYTES", np.array(pngs, dtype=object))}
        ),
        "v2 BYTES base64": codec.decode_v2(
            {"x": InputTensor("x", "BYTES", np.array([b64(p) for p in pngs], dtype=object))}
        ),
        "v1 b64": codec.decode_v1([{"b64": b64(p)} for p in pngs]),
        "v1 image": codec.decode_v1([{"image": b64(p)} for p in pngs]),
        "v1 pixel lists": codec.decode_v1([p[..., 0].tolist() for p in pixels]),
    }
    for form, batch in forms.items():
        answer = codec.predict(batch)
        np.testing.assert_allclose(answer.tensors[1][2], expected, rtol=1e-5, err_msg=form)
        labels = [str(model.classes_[i]) for i in expected.argmax(axis=1)]
        assert answer.labels == labels, form
        assert set(answer.instances[0]) == {"label", "probabilities", "low_confidence"}
    # JPEG is lossy: the same label on these high-contrast shapes, not the same numbers
    jpeg = codec.decode_v1([{"b64": b64(encoded(pixels[0], "JPEG"))}])
    assert jpeg.model_input.shape == (1, 16, 16, 1)
    # an RGB image of another size is converted and resized like the training images
    rgb = Image.fromarray(pixels[0, ..., 0]).convert("RGB").resize((32, 32))
    big = encoded(np.asarray(rgb))
    assert codec.decode_v1([{"b64": b64(big)}]).model_input.shape == (1, 16, 16, 1)
    assert codec.inputs[0].as_metadata() == {"name": "image", "datatype": "BYTES", "shape": [-1]}


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (InputTensor("image", "UINT8", np.zeros((1, 28, 28), np.uint8)), r"\[n, 16, 16\]"),
        (
            InputTensor("image", "UINT8", np.zeros((1, 16, 16, 3), np.uint8)),
            "got \\[1, 16, 16, 3\\]",
        ),
        (InputTensor("image", "UINT8", np.zeros((16, 16), np.uint8)), "shape must be"),
        (InputTensor("image", "FP32", np.zeros((1, 16, 16), np.float32)), '"UINT8".*"BYTES"'),
        (
            InputTensor("image", "BYTES", np.array(["bm90IGFuIGltYWdl"], object)),
            "not a PNG or JPEG",
        ),
        (InputTensor("image", "BYTES", np.array(["%%%"], object)), "neither PNG/JPEG"),
        (
            InputTensor("image", "BYTES", np.array([b"\x89PNG\r\n\x1a\n broken"], object)),
            r"inputs\[image\]\[0\]: not a readable image",
        ),
        (InputTensor("image", "BYTES", np.zeros((1, 2), object)), r"\[n\] or \[n, 1\]"),
    ],
)
def test_bad_v2_inputs_name_the_field(fitted, tensor, message):
    blueprint, model, _ = fitted
    with pytest.raises(InputError, match=message):
        blueprint.codec(model).decode_v2({"image": tensor})


def test_bad_v1_inputs_and_limits(fitted):
    blueprint, model, _ = fitted
    codec = blueprint.codec(model, Limits(max_instances=2))
    gif = io.BytesIO()
    Image.new("L", (16, 16)).save(gif, format="GIF")
    cases = [
        ([{"b64": b64(gif.getvalue())}], r"instances\[0\]\.b64 is not a PNG or JPEG.*unsupported"),
        ([{"text": "x"}], r'instances\[0\] needs "b64"'),
        ([[[300] * 16] * 16], r"instances\[0\] must hold integer pixels 0\.\.255"),
        ([[[1, 2], [3]]], r"instances\[0\]"),
        ([], "instances is empty"),
        ([[[0] * 16] * 16] * 3, "at most 2 per request"),
    ]
    for instances, message in cases:
        with pytest.raises(InputError, match=message):
            codec.decode_v1(instances)
    with pytest.raises(InputError, match="larger than"):
        codec.decode_v1([{"b64": "A" * (12 * 1024 * 1024)}])


def test_summaries_replay_and_become_training_rows(fitted):
    blueprint, model, frame = fitted
    codec = blueprint.codec(model)
    pixels = blueprint.features(frame.head(4))
    batch = codec.decode_v2({"image": InputTensor("image", "UINT8", pixels)})
    # the stored summary is a lossless PNG: replays and feedback see the same pixels
    (replay,) = codec.v2_inputs(batch.summaries)
    again = codec.decode_v2(
        {"image": InputTensor("image", replay["datatype"], json_tensor(replay))}
    )
    np.testing.assert_array_equal(again.model_input, pixels)
    rows = blueprint.rows_from_feedback(batch.summaries, ["circle", "square", "cross", "cross"])
    rows.insert(0, "id", ["a", "b", "c", "d"])
    assert blueprint.validate(rows)["image_shape"] == [16, 16, 1]
    np.testing.assert_array_equal(blueprint.features(rows), pixels)


def test_drift_features_see_an_inversion(fitted):
    blueprint, model, frame = fitted
    featurizer = blueprint.drift_featurizer(model, frame)
    codec = blueprint.codec(model)
    pixels = blueprint.features(frame)
    plain = featurizer.transform(pixels, codec.predict(codec._batch(pixels)).instances)
    inverted = 255 - pixels
    flipped = featurizer.transform(inverted, codec.predict(codec._batch(inverted)).instances)
    assert set(plain) == set(featurizer.groups) == {
        "image_stats", "probabilities", "embedding", "prediction",
    }  # fmt: skip
    assert plain["probabilities"].shape == (len(frame), 3)
    assert plain["embedding"].shape[0] == len(frame)
    brightness = plain["image_stats"][:, 0].mean(), flipped["image_stats"][:, 0].mean()
    assert brightness[0] < 0.4 < 0.6 < brightness[1]
    assert featurizer.categories("prediction") == {0: [0, 1, 2]}
    assert {d.features for d in featurizer.default_detectors()} == set(featurizer.groups)


def test_blueprint_options_metric_and_validation(fitted, tmp_path, monkeypatch):
    blueprint, _, frame = fitted
    monkeypatch.setattr("driftloop.datasets.images.FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(ValueError, match="install the Debian package dataset-fashion-mnist"):
        blueprint.prepare(None, None)
    monkeypatch.undo()
    assert blueprint.primary_metric == "accuracy"
    assert get_blueprint("vision", metric="macro_f1").primary_metric == "macro_f1"
    spec = get_blueprint(blueprint.spec.to_text()).spec
    assert spec.options["epochs"] == blueprint.epochs  # sizes survive the version tag
    with pytest.raises(ValueError, match="--dataset: unknown dataset 'mnist'"):
        blueprint.prepare("mnist", None)
    with pytest.raises(ValueError, match="--data PATH"):
        blueprint.prepare("images", None)
    assert blueprint.prepare(None, str(tmp_path))[1] == "images"
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="--data: .*notes.txt is neither an image folder"):
        blueprint.prepare(None, str(tmp_path / "notes.txt"))
    with pytest.raises(DatasetValidationError, match="two classes"):
        blueprint.validate(frame[frame["label"] == "circle"])
    with pytest.raises(DatasetValidationError, match="lacks column\\(s\\) pixels"):
        blueprint.validate(frame.drop(columns=["pixels"]))
    mixed = frame.copy()
    mixed.loc[0, "height"] = 8
    with pytest.raises(DatasetValidationError, match="different shapes"):
        blueprint.validate(mixed)
