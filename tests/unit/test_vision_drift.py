"""The vision drift reference with its default detectors: same-kind images pass, inverted
images (what a camera with a flipped polarity sends) are flagged on the image statistics
and the CNN's embedding."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.codec import InputTensor
from driftloop.datasets.images import load_image_folder
from tests.unit.test_vision_data import write_shapes_folder

pytestmark = pytest.mark.slow  # alibi-detect and torch load in seconds


def test_reference_flags_inverted_images_not_fresh_ones(tmp_path):
    from driftloop.monitor.reference import build_reference

    blueprint = get_blueprint("vision", epochs=2, width=8)
    train = load_image_folder(write_shapes_folder(tmp_path / "train", per_class=40, seed=1))
    held_out = load_image_folder(write_shapes_folder(tmp_path / "held", per_class=60, seed=2))
    fresh = load_image_folder(write_shapes_folder(tmp_path / "fresh", per_class=30, seed=3))
    model = blueprint.candidates(seed=0)["cnn"]
    model.fit(blueprint.features(train), blueprint.targets(train))
    bundle = build_reference(blueprint, model, held_out, seed=0)
    assert {d.features for d in bundle.config.detectors} == set(bundle.featurizer.groups)

    def flagged(images: np.ndarray) -> set[str]:
        batch = bundle.codec.decode_v2({"image": InputTensor("image", "UINT8", images)})
        answer = bundle.codec.predict(batch)
        results = bundle.detectors.run(
            bundle.featurizer.transform(batch.model_input, answer.instances)
        )
        return {r.features for r in results if r.detected}

    pixels = blueprint.features(fresh)
    assert "image_stats" not in flagged(pixels)
    inverted = flagged(255 - pixels)
    assert {"image_stats", "embedding"} <= inverted
