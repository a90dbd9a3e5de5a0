"""What the drift monitor compares: named feature groups computed from served traffic.

A blueprint fits a featurizer on held-out rows of a model version (the drift
reference) and the monitor applies it to each window of logged requests and
responses. Groups are continuous (KS / CvM / MMD apply) or categorical
(integer codes; chi-square applies); ``default_detectors`` is the monitor
configuration a blueprint suggests when the operator gives none.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

GroupKind = Literal["continuous", "categorical"]


@dataclass(frozen=True)
class SuggestedDetector:
    name: str
    kind: str  # a monitor detector kind: ks, cvm, mmd, chisquare, ...
    features: str  # a group name
    correction: str = "bonferroni"


class DriftFeaturizer(ABC):
    #: group name -> "continuous" | "categorical"
    groups: dict[str, GroupKind]

    @abstractmethod
    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        """Each group as a 2-D array with one row per instance."""

    def categories(self, group: str) -> dict[int, list[int]] | None:
        """Possible codes per column of a categorical group (None: taken from the reference)."""
        return None

    def knows(self, output: dict) -> bool:
        """Whether a logged answer can be featurised (e.g. its label is one of the model's)."""
        return True

    @abstractmethod
    def default_detectors(self) -> list[SuggestedDetector]: ...
