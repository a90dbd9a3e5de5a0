"""What the monitor compares for a price forecaster, per request window:

* ``returns`` -- the newest log returns: the last one, its size, and the mean of the last 5;
* ``rolling_volatility`` -- the std of the last 5 and the last 20 log returns;
* ``prediction`` -- the predicted log return.

Each group has a KS test per feature (FDR across them). Consecutive requests' windows
overlap by all but a day, so statistics of the whole window (its volatility, its largest
move) are nearly the same from one request to the next: a KS test over a window of
requests would see any two quarters as different. The newest returns change every day
(on MSFT, a calm 2007 quarter against 2005-06 passes, the 2008 crisis does not); rolling
volatility reacts to any change of volatility regime, by design (the 20-day one keeps a
month's memory). The per-request ``drift_warning`` is the other view: the whole window
against the training windows' range (``windows.DriftReference``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.drift import DriftFeaturizer, SuggestedDetector
from driftloop.blueprints.forecast.windows import log_returns

ROLLING_DAYS = (5, 20)
RECENT_DAYS = 5


def newest_returns(windows: np.ndarray) -> np.ndarray:
    """``[n, 3]``: the last log return, its absolute value, the mean of the last 5."""
    returns = log_returns(np.asarray(windows, dtype=float))
    last = returns[:, -1]
    recent = returns[:, -min(RECENT_DAYS, returns.shape[1]) :].mean(axis=1)
    return np.column_stack([last, np.abs(last), recent])


def rolling_volatility(windows: np.ndarray) -> np.ndarray:
    """``[n, 2]``: the std of the last 5 and of the last 20 log returns."""
    returns = log_returns(np.asarray(windows, dtype=float))
    return np.column_stack(
        [returns[:, -min(days, returns.shape[1]) :].std(axis=1) for days in ROLLING_DAYS]
    )


class PriceFeaturizer(DriftFeaturizer):
    groups = {
        "returns": "continuous",
        "rolling_volatility": "continuous",
        "prediction": "continuous",
    }

    def knows(self, output: dict) -> bool:
        return isinstance(output, dict) and isinstance(output.get("predicted_price"), int | float)

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        windows = np.asarray(model_input, dtype=float)
        predicted = np.array([o["predicted_price"] for o in outputs], dtype=float)
        prediction = np.log(predicted / windows[:, -1]).reshape(-1, 1)
        return {
            "returns": newest_returns(windows).astype(np.float32),
            "rolling_volatility": rolling_volatility(windows).astype(np.float32),
            "prediction": prediction.astype(np.float32),
        }

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("ks-returns", "ks", "returns", correction="fdr"),
            SuggestedDetector(
                "ks-rolling-volatility", "ks", "rolling_volatility", correction="fdr"
            ),  # fmt: skip
            SuggestedDetector("ks-prediction", "ks", "prediction"),
        ]
