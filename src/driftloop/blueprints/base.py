"""What a blueprint declares: data, candidate models, the metric that ranks them.

The loop machinery (training, registry, gate, serving, monitor) is shared;
a use case is one Blueprint subclass. Candidates are whole, unfitted
pipelines (featurisation included), so a fitted candidate is the served model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd


@dataclass(frozen=True)
class ParamRange:
    """One tunable hyperparameter (``set_params`` name) and its search range."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


class Blueprint(ABC):
    name: ClassVar[str]
    task: ClassVar[str]
    primary_metric: ClassVar[str]
    greater_is_better: ClassVar[bool] = True
    default_dataset: ClassVar[str]
    labels: ClassVar[tuple[str, ...]] = ()
    # How the drift monitor turns traffic into numbers (see the subclass docstring).
    drift_features: ClassVar[str] = ""

    @abstractmethod
    def candidates(self, seed: int) -> dict[str, Any]:
        """name -> unfitted sklearn-compatible estimator (whole pipeline)."""

    @abstractmethod
    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        """Metrics of a fitted model on a labelled frame; includes ``primary_metric``."""

    @abstractmethod
    def sample_inputs(self) -> list:
        """A few inputs a smoke test can send to the served model."""

    def tuning_space(self, candidate: str) -> dict[str, ParamRange]:
        """Hyperparameters worth searching for ``candidate`` (empty: nothing to tune)."""
        return {}

    def features(self, frame: pd.DataFrame):
        """Model inputs from a canonical frame."""
        return frame["text"].tolist()

    def targets(self, frame: pd.DataFrame):
        return frame["label"].astype(str).to_numpy()

    def better(self, score: float, than: float | None) -> bool:
        """Whether ``score`` beats ``than`` in this blueprint's direction."""
        if than is None:
            return True
        return score > than if self.greater_is_better else score < than

    def __repr__(self) -> str:
        return f"<Blueprint {self.name}: {self.task}, ranked by {self.primary_metric}>"
