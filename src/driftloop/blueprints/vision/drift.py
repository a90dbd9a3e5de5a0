"""Drift features of an image classifier: image statistics, its softmax, its embedding.

* ``image_stats`` -- per image: brightness (mean pixel), contrast (pixel standard
  deviation) and the share of near-black and near-white pixels (inversion, exposure);
* ``probabilities`` -- the served softmax (what the model makes of the traffic);
* ``embedding`` -- the model's penultimate layer (``embed``) or, for a pixel
  baseline, the scaled pixels, projected to a few dimensions by a PCA fitted on
  the reference rows;
* ``prediction`` -- the predicted class (categorical: a class-prior shift).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from driftloop.blueprints.drift import DriftFeaturizer, GroupKind, SuggestedDetector
from driftloop.blueprints.vision.codec import image_shape
from driftloop.blueprints.vision.pixels import as_images


def image_statistics(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return np.column_stack(
        [
            flat.mean(axis=1),
            flat.std(axis=1),
            (flat < 0.05).mean(axis=1),
            (flat > 0.95).mean(axis=1),
        ]
    ).astype(np.float32)


class ImageFeaturizer(DriftFeaturizer):
    groups: dict[str, GroupKind] = {
        "image_stats": "continuous",
        "probabilities": "continuous",
        "embedding": "continuous",
        "prediction": "categorical",
    }

    def __init__(self, model: Any, classes: Sequence[str], pca: PCA) -> None:
        self.model = model
        self.shape = image_shape(model)
        self.classes = [str(c) for c in classes]
        self.pca = pca
        self._class_index = {label: i for i, label in enumerate(self.classes)}

    @classmethod
    def fit(cls, model: Any, reference: Any, *, dims: int = 8, seed: int = 0) -> ImageFeaturizer:
        if not hasattr(model, "classes_"):
            raise ValueError("the model has no classes_: is it a fitted classifier?")
        images = as_images(reference, image_shape(model), "reference")
        vectors = _embedding(model, images)
        dims = max(1, min(dims, vectors.shape[1], len(images) - 1))
        pca = PCA(n_components=dims, random_state=seed).fit(vectors)
        return cls(model, model.classes_, pca)

    def knows(self, output: dict) -> bool:
        return isinstance(output, dict) and output.get("label") in self._class_index

    def categories(self, group: str) -> dict[int, list[int]] | None:
        if group == "prediction":
            return {0: list(range(len(self.classes)))}
        return None

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        images = as_images(model_input, self.shape, "inputs")
        if len(images) != len(outputs):
            raise ValueError(f"{len(images)} images but {len(outputs)} outputs")
        try:
            predicted = [self._class_index[o.get("label")] for o in outputs]
            probabilities = [[float(o["probabilities"][c]) for c in self.classes] for o in outputs]
        except KeyError as exc:
            raise ValueError(
                f"{exc.args[0]!r} is not one of the model's classes {self.classes}"
            ) from None
        return {
            "image_stats": image_statistics(images),
            "probabilities": np.asarray(probabilities, dtype=np.float32).reshape(len(images), -1),
            "embedding": self.pca.transform(_embedding(self.model, images)).astype(np.float32),
            "prediction": np.asarray(predicted, dtype=np.int64).reshape(-1, 1),
        }

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("ks-image-stats", "ks", "image_stats"),
            SuggestedDetector("ks-probabilities", "ks", "probabilities", correction="fdr"),
            SuggestedDetector("ks-embedding", "ks", "embedding", correction="fdr"),
            SuggestedDetector("chi2-prediction", "chisquare", "prediction"),
        ]


def _embedding(model: Any, images: np.ndarray) -> np.ndarray:
    if hasattr(model, "embed"):
        return np.asarray(model.embed(images), dtype=np.float32)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0
