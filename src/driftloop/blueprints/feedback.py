"""Ground truth: what feedback says about a prediction, and the live score it gives.

A feedback kind checks a submitted truth against the stored prediction (the
output summary the codec wrote), says whether the prediction was right where
that is a yes/no question, and computes the blueprint's primary metric over
prediction/truth pairs: the live value ``LiveScoreDrop`` compares with the
champion's test value.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

from driftloop.blueprints.scoring import macro_f1, rmse


class FeedbackError(ValueError):
    """A truth that does not fit the prediction; the message names the field."""


class ObservationKey(NamedTuple):
    """What a prediction is about, when its truth is observed later by name rather than
    sent by request id: a series and the date observed (a forecast's target day)."""

    series: str
    date: str  # ISO date, YYYY-MM-DD


class Feedback(ABC):
    kind: str

    @abstractmethod
    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        """(the JSON value to store, whether the prediction was correct or None).

        ``outputs`` are the stored per-instance outputs of the request the truth is about.
        """

    @abstractmethod
    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        """The primary metric of the predictions ``outputs`` against ``truths``."""

    def live_metrics(self, outputs: Sequence[dict], truths: Sequence[Any]) -> dict[str, float]:
        """Further live metrics worth exporting beside the primary one (name -> value).

        Empty by default; a forecaster adds its MAE, whose scale users read directly.
        """
        return {}

    def residual(self, output: dict, truth: Any) -> float | None:
        """One instance's error, for the monitor's online test on residuals
        (``monitor.residuals``); None (the default): this kind has none to watch."""
        return None

    def observation_key(self, summary: Any) -> ObservationKey | None:
        """The observation that will resolve a prediction of the instance ``summary`` (its
        stored input summary), or None when its truth can only come by request id."""
        return None


class LabelFeedback(Feedback):
    """The true class; the live score is macro-F1 of the predicted labels."""

    kind = "label"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        allowed = list(outputs[0].get("probabilities", {})) if outputs else []
        if not isinstance(truth, str) or not truth.strip():
            raise FeedbackError(f"label must be one of the model's labels {allowed}")
        if allowed and truth not in allowed:
            raise FeedbackError(f"label {truth!r} is not one of the model's labels {allowed}")
        return truth, all(output.get("label") == truth for output in outputs)

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        return macro_f1([str(t) for t in truths], [str(o.get("label")) for o in outputs])


class NumberFeedback(Feedback):
    """The true value; the live score is the RMSE of the predictions."""

    kind = "number"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        if isinstance(truth, bool) or not isinstance(truth, int | float):
            raise FeedbackError(f"value must be a number, got {type(truth).__name__}")
        if not math.isfinite(float(truth)):
            raise FeedbackError("value must be a finite number")
        return float(truth), None

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        return rmse([float(t) for t in truths], [float(o["prediction"]) for o in outputs])
