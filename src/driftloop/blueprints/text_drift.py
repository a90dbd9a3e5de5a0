"""Drift features of a text classifier: what its own TF-IDF sees, text statistics, predictions.

For a text model (an sklearn ``Pipeline``: normalisation -> TF-IDF ->
classifier) the monitor watches three feature groups:

* ``projection`` -- the model's own TF-IDF features, projected to a few dense
  dimensions by a TruncatedSVD fitted on the reference rows (what the
  classifier "sees", small enough for KS/MMD);
* ``text_stats`` -- log text length and the unknown-token rate (share of the
  vectorizer's tokens/n-grams missing from its fitted vocabulary: new
  vocabulary is the first sign of a new domain);
* ``prediction`` -- the predicted class index (categorical).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.pipeline import FeatureUnion, Pipeline

from driftloop.blueprints.drift import DriftFeaturizer, GroupKind, SuggestedDetector

FEATURE_GROUPS = ("projection", "text_stats", "prediction")


class FeaturizerError(ValueError):
    """The model does not have the shape the text featurizer needs."""


class TextFeaturizer(DriftFeaturizer):
    groups: dict[str, GroupKind] = {
        "projection": "continuous",
        "text_stats": "continuous",
        "prediction": "categorical",
    }

    def __init__(self, text_transform, vocab_probes, classes: Sequence[str], svd: TruncatedSVD):
        self.text_transform = text_transform
        self.vocab_probes = vocab_probes
        self.classes = [str(c) for c in classes]
        self.svd = svd
        self._class_index = {label: i for i, label in enumerate(self.classes)}

    @classmethod
    def fit(
        cls, model, reference_texts: Sequence[str], *, dims: int = 12, seed: int = 0
    ) -> TextFeaturizer:
        if not isinstance(model, Pipeline) or len(model.steps) < 2:
            raise FeaturizerError(
                "the text featurizer needs an sklearn Pipeline (features -> classifier)"
            )
        if not hasattr(model, "classes_"):
            raise FeaturizerError("the model has no classes_: is it a fitted classifier?")
        text_transform = model[:-1]
        probes = _vocab_probes(model)
        if not probes:
            raise FeaturizerError(
                "no fitted vectorizer with a vocabulary_ found in the model pipeline"
            )
        matrix = text_transform.transform(list(reference_texts))
        # TruncatedSVD needs dims < n_features; tiny vocabularies get fewer dims
        dims = max(1, min(dims, matrix.shape[1] - 1))
        svd = TruncatedSVD(n_components=dims, random_state=seed).fit(matrix)
        return cls(text_transform, probes, model.classes_, svd)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def knows(self, output: dict) -> bool:
        return isinstance(output, dict) and output.get("label") in self._class_index

    def categories(self, group: str) -> dict[int, list[int]] | None:
        if group == "prediction":
            return {0: list(range(self.n_classes))}
        return None

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in model_input]
        if len(texts) != len(outputs):
            raise ValueError(f"{len(texts)} texts but {len(outputs)} outputs")
        matrix = self.text_transform.transform(texts)
        projection = self.svd.transform(matrix).astype(np.float32)
        lengths = np.log1p(np.array([len(t) for t in texts], dtype=np.float32))
        unknown = self.unknown_token_rate(texts)
        try:
            predicted = np.array(
                [self._class_index[output.get("label")] for output in outputs], dtype=np.int64
            )
        except KeyError as exc:
            raise ValueError(
                f"label {exc.args[0]!r} is not one of the model's classes {self.classes}"
            ) from None
        return {
            "projection": projection,
            "text_stats": np.column_stack([lengths, unknown]).astype(np.float32),
            "prediction": predicted.reshape(-1, 1),
        }

    def unknown_token_rate(self, texts: Sequence[str]) -> np.ndarray:
        rates = np.zeros((len(probes := self.vocab_probes), len(texts)), dtype=np.float32)
        for row, (prefix, vectorizer) in enumerate(probes):
            inputs = prefix.transform(list(texts)) if prefix is not None else list(texts)
            analyze = vectorizer.build_analyzer()
            vocabulary = vectorizer.vocabulary_
            for column, doc in enumerate(inputs):
                tokens = analyze(doc)
                if tokens:
                    rates[row, column] = sum(t not in vocabulary for t in tokens) / len(tokens)
        return rates.mean(axis=0)

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("ks-projection", "ks", "projection", correction="fdr"),
            SuggestedDetector("ks-text-stats", "ks", "text_stats"),
            SuggestedDetector("chi2-prediction", "chisquare", "prediction"),
        ]


def _vocab_probes(model: Pipeline) -> list[tuple[object | None, object]]:
    """(the steps feeding it, vectorizer) for every fitted vectorizer before the classifier."""
    probes = []
    for index, (_, step) in enumerate(model.steps[:-1]):
        prefix = model[:index] if index else None
        candidates = (
            [t for _, t in step.transformer_list] if isinstance(step, FeatureUnion) else [step]
        )
        for candidate in candidates:
            if hasattr(candidate, "vocabulary_") and hasattr(candidate, "build_analyzer"):
                probes.append((prefix, candidate))
    return probes
