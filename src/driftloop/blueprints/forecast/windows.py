"""Windows of a price series, and the statistics of a window the drift warning compares.

A training row is one forecast: the ``window`` closes before a day (``p_<window>`` ..
``p_1``, oldest first) and that day's close (``close``); its id is that day's date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.prices import CLOSE, DATE

# a window statistic beyond the training windows' [0.5 %, 99.5 %] range raises the warning
WARNING_QUANTILES = (0.005, 0.995)
# statistics that warn only above the range: a calmer market than training's is a shift,
# but not a risk to a next-day forecast (calm 2017 MSFT sat below 2015-16's range all year)
WARN_ABOVE_ONLY = ("volatility", "max_abs_return")


def price_columns(window: int) -> list[str]:
    return [f"p_{k}" for k in range(window, 0, -1)]


def window_frame(series: pd.DataFrame, window: int) -> pd.DataFrame:
    """One row per day that has ``window`` closes before it (see the module docstring)."""
    values = series[CLOSE].to_numpy(dtype=float)
    if len(values) <= window:
        raise DatasetValidationError(
            f"--window {window}: the series has {len(values)} days; a forecast needs "
            f"{window} days before it"
        )
    targets = np.arange(window, len(values))
    lags = np.stack([values[targets - k] for k in range(window, 0, -1)], axis=1)
    dates = series[DATE].to_numpy()[targets]
    frame = pd.DataFrame(lags, columns=price_columns(window))
    frame.insert(0, DATE, dates)
    frame.insert(0, "id", dates)
    frame[CLOSE] = values[targets]
    return frame


def log_returns(windows: np.ndarray) -> np.ndarray:
    return np.diff(np.log(windows), axis=1)


def window_statistics(windows: np.ndarray) -> dict[str, np.ndarray]:
    """Per window: the daily volatility (std of log returns), mean log return, max |return|."""
    returns = log_returns(np.asarray(windows, dtype=float))
    return {
        "volatility": returns.std(axis=1),
        "mean_return": returns.mean(axis=1),
        "max_abs_return": np.abs(returns).max(axis=1),
    }


@dataclass(frozen=True)
class DriftReference:
    """The training windows' range of each window statistic; shipped inside every model."""

    low: dict[str, float]
    high: dict[str, float]
    median: dict[str, float]

    @classmethod
    def fit(cls, windows: np.ndarray) -> DriftReference:
        stats = window_statistics(windows)
        low_q, high_q = WARNING_QUANTILES
        return cls(
            low={k: float(np.quantile(v, low_q)) for k, v in stats.items()},
            high={k: float(np.quantile(v, high_q)) for k, v in stats.items()},
            median={k: float(np.median(v)) for k, v in stats.items()},
        )

    def check(self, windows: np.ndarray) -> list[tuple[bool, dict]]:
        """(warning, details) per window: which statistics left the training range.

        ``outside_training_range`` names those that raise the warning; ``below_training_range``
        the volatility statistics that are merely calmer than training (no warning).
        """
        stats = window_statistics(windows)
        answers = []
        for i in range(len(windows)):
            details, outside, calmer = {}, [], []
            for name, values in stats.items():
                value = float(values[i])
                details[name] = {
                    "value": value,
                    "training_median": self.median[name],
                    "training_range": [self.low[name], self.high[name]],
                }
                if value > self.high[name]:
                    outside.append(name)
                elif value < self.low[name]:
                    (calmer if name in WARN_ABOVE_ONLY else outside).append(name)
            details["outside_training_range"] = outside
            details["below_training_range"] = calmer
            answers.append((bool(outside), details))
        return answers
