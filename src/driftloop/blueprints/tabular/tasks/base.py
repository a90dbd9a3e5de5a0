"""The questions a tabular task answers for the blueprint contract (see ``blueprints.base``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import pandas as pd

from driftloop.blueprints.base import Metric, ParamChoice, ParamRange
from driftloop.blueprints.feedback import FeedbackError
from driftloop.datasets.errors import DatasetValidationError

ID_COLUMN = "id"


def per_instance(truth: Any, outputs: Sequence[dict]) -> list[Any]:
    """A request's truth for each of its instances: a list as long as the request gives one
    each (as the monitor reads it), anything else applies to all."""
    if isinstance(truth, list):
        if len(truth) != len(outputs):
            raise FeedbackError(
                f"value has {len(truth)} items for a request of {len(outputs)} instances; "
                "send one value, or one per instance"
            )
        return list(truth)
    return [truth] * len(outputs)


class TaskStrategy(ABC):
    def __init__(self, options: dict) -> None:
        self.options = options

    # --- options -------------------------------------------------------------------
    def settle(self, frame: pd.DataFrame) -> tuple[dict, str]:
        """Options fixed from the raw table before training (e.g. a series' frequency), and a
        note; raise ``DatasetValidationError`` naming the option or column that is wrong."""
        return {}, ""

    # --- data ----------------------------------------------------------------------
    @property
    @abstractmethod
    def target_column(self) -> str | None: ...

    @abstractmethod
    def default_metric(self) -> Metric: ...

    @property
    def class_column(self) -> str | None:
        """The column whose values every split (and fold) must hold; None: no such column."""
        return None

    def task_frame(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The training rows of a raw table (with its ``id`` column)."""
        return raw

    def feature_columns(self, frame: pd.DataFrame) -> list[str]:
        return [c for c in frame.columns if c not in (ID_COLUMN, self.target_column)]

    def features(self, frame: pd.DataFrame) -> Any:
        return frame[self.feature_columns(frame)]

    def targets(self, frame: pd.DataFrame) -> Any:
        """None: the models fit on the features alone."""
        return None

    def validate(self, frame: pd.DataFrame, what: str) -> dict:
        if frame.empty:
            raise DatasetValidationError(f"{what} has no rows")
        features = self.feature_columns(frame)
        if not features:
            raise DatasetValidationError(f"{what} has no feature columns")
        return {"rows": len(frame), "features": features, "target": self.target_column}

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        """The inputs as training rows: an unsupervised model learns from new rows themselves."""
        return pd.DataFrame([dict(row) for row in inputs])

    # --- trainer -------------------------------------------------------------------
    @abstractmethod
    def candidates(self, seed: int, n_jobs: int) -> dict[str, Any]: ...

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        return {}

    @abstractmethod
    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]: ...

    def input_example(self, frame: pd.DataFrame) -> Any:
        return self.features(frame).head(2).reset_index(drop=True)

    # --- serving, drift, feedback --------------------------------------------------
    @abstractmethod
    def codec(self, model: Any, limits: Any) -> Any: ...

    @abstractmethod
    def drift_featurizer(self, model: Any, reference: pd.DataFrame) -> Any: ...

    @abstractmethod
    def feedback(self) -> Any: ...
