"""Text classification on a loaded model: labels, probabilities, low-confidence flags.

Pure logic, no transport: the KServe model class turns these into v1/v2 answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftloop.serving.loader import LoadedModel


@dataclass(frozen=True)
class Predictions:
    labels: list[str]
    probabilities: np.ndarray  # shape (n, k), columns in ``classes`` order
    low_confidence: list[bool]
    classes: tuple[str, ...]
    version: str

    @property
    def confidences(self) -> list[float]:
        return self.probabilities.max(axis=1).astype(float).tolist()

    def as_v1(self) -> list[dict]:
        return [
            {
                "label": label,
                "probabilities": {cls: float(p) for cls, p in zip(self.classes, row, strict=True)},
                "low_confidence": low,
            }
            for label, row, low in zip(
                self.labels, self.probabilities, self.low_confidence, strict=True
            )
        ]


def classify(model: LoadedModel, texts: list[str], threshold: float) -> Predictions:
    """Classify ``texts``; a text is low-confidence when its top probability < ``threshold``."""
    probabilities = np.asarray(model.pipeline.predict_proba(list(texts)), dtype=np.float32)
    top = probabilities.argmax(axis=1)
    labels = [model.labels[i] for i in top]
    low = (probabilities.max(axis=1) < threshold).tolist()
    return Predictions(
        labels=labels,
        probabilities=probabilities,
        low_confidence=[bool(x) for x in low],
        classes=model.labels,
        version=model.version,
    )
