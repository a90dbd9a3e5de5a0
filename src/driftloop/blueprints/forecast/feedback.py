"""The realised close of the forecast day; the live score is MASE against persistence (the
served model's absolute error over persistence's, on the same days), and the live MAE is
exported beside it.

A close arrives either by request id (``POST /v1/feedback/{id}``) or as an observation of a
series on a date (``POST /v1/feedback/observations``): a request that named its ``series``
and target ``date`` is resolved by the observation of that day. A request of several
windows is resolved window by window: its truth is a list with ``null`` for the days not
observed yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from driftloop.blueprints.feedback import Feedback, FeedbackError, ObservationKey
from driftloop.blueprints.forecast.metrics import forecast_scores

SERIES, DATE = "series", "date"  # the optional per-window fields a request may name


def check_close(value: Any, field: str = "value") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FeedbackError(f"{field} must be the realised close (a number), got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise FeedbackError(f"{field} must be a finite positive close, got {value}")
    return float(value)


class PriceFeedback(Feedback):
    kind = "price"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        if not isinstance(truth, list):
            return check_close(truth), None
        if len(truth) != len(outputs):
            raise FeedbackError(
                f"value has {len(truth)} closes for a request of {len(outputs)} instances"
            )
        # null: that window's day is not observed yet (observations resolve day by day)
        closes = [None if v is None else check_close(v, f"value[{i}]") for i, v in
                  enumerate(truth)]  # fmt: skip
        if all(close is None for close in closes):
            raise FeedbackError("value holds no close (every item is null)")
        return closes, None

    def _scores(self, outputs: Sequence[dict], truths: Sequence[Any]) -> dict[str, float]:
        return forecast_scores(
            [float(t) for t in truths],
            [float(o["predicted_price"]) for o in outputs],
            [float(o["last_price"]) for o in outputs],
        )

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        return self._scores(outputs, truths)["mase"]

    def live_metrics(self, outputs: Sequence[dict], truths: Sequence[Any]) -> dict[str, float]:
        scores = self._scores(outputs, truths)
        return {"mae": scores["mae"], "mase": scores["mase"]}

    def residual(self, output: dict, truth: Any) -> float | None:
        """The absolute log error: scale-free, so a volatile regime shows as larger errors
        whatever the price level."""
        return abs(math.log(float(truth) / float(output["predicted_price"])))

    def observation_key(self, summary: Any) -> ObservationKey | None:
        if isinstance(summary, dict) and summary.get(SERIES) and summary.get(DATE):
            return ObservationKey(str(summary[SERIES]), str(summary[DATE]))
        return None
