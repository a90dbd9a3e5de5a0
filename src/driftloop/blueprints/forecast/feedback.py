"""The realised close of the forecast day; the live score is MASE against persistence (the
served model's absolute error over persistence's, on the same days)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from driftloop.blueprints.feedback import Feedback, FeedbackError
from driftloop.blueprints.forecast.metrics import forecast_scores


class PriceFeedback(Feedback):
    kind = "price"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        values = truth if isinstance(truth, list) else [truth]
        if isinstance(truth, list) and len(truth) != len(outputs):
            raise FeedbackError(
                f"value has {len(truth)} closes for a request of {len(outputs)} instances"
            )
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FeedbackError(f"value must be the realised close (a number), got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise FeedbackError(f"value must be a finite positive close, got {value}")
        return truth, None

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        scores = forecast_scores(
            [float(t) for t in truths],
            [float(o["predicted_price"]) for o in outputs],
            [float(o["last_price"]) for o in outputs],
        )
        return scores["mase"]
