"""The honest evaluation: a temporal split with a gap, one-step rolling forecasts over the
test days, every candidate scored against persistence, and the gate.

Days (window rows, in date order) are cut into train | gap | val | gap | test. Each gap
is at least the window, so no validation or test window holds a day any model trained
on as a target. Each test day is forecast from the true closes of the ``window`` days
before it by the models fitted once on train (rolling origin, one step, no refit).

The gate: candidates are ranked by validation MASE; the best is promoted only if its
*test* MASE against persistence is below 1 and a one-sided Diebold-Mariano test says its
errors are lower than persistence's beyond chance (p < ``significance``, 0.05; ``None``
skips the test). Otherwise persistence serves, and the report says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.base import clone

from driftloop.blueprints.forecast.metrics import forecast_scores
from driftloop.blueprints.forecast.windows import price_columns
from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.prices import CLOSE, DATE
from driftloop.training.split_scheme import TimeSplitScheme
from driftloop.training.splits import split_frame_in_time

PERSISTENCE = "persistence"


@dataclass
class TemporalSplit:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    gap: int

    def describe(self) -> dict:
        def span(frame):
            return [str(frame["date"].iloc[0]), str(frame["date"].iloc[-1]), len(frame)]

        return {"train": span(self.train), "val": span(self.val), "test": span(self.test),
                "gap_days": self.gap}  # fmt: skip


def temporal_split(
    windows: pd.DataFrame, window: int, *, test_days: int = 250, val_days: int = 250, gap=None
) -> TemporalSplit:
    """Train | gap | val | gap | test over window rows in date order (gap >= window): the
    shared time split (``TimeSplitScheme``) the pipeline's split step applies too."""
    gap = window if gap is None else int(gap)
    if gap < window:
        raise ValueError(f"gap: must be at least the window ({window}), got {gap}")
    needed = test_days + val_days + 2 * gap + 2 * window
    if len(windows) < needed:
        raise DatasetValidationError(
            f"the series gives {len(windows)} forecast days; {test_days} test and {val_days} "
            f"validation days with gaps of {gap} need at least {needed} (fewer: "
            "--param test_days=N --param val_days=N)"
        )
    scheme = TimeSplitScheme(DATE, test=test_days, val=val_days, gap=gap)
    splits = split_frame_in_time(windows, scheme, label_column=None)
    return TemporalSplit(train=splits.train, val=splits.val, test=splits.test, gap=gap)


@dataclass
class BacktestReport:
    split: dict
    val: dict[str, dict[str, float]]
    test: dict[str, dict[str, float]]
    best: str
    served: str
    reason: str
    models: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def promoted(self) -> bool:
        return self.served != PERSISTENCE

    def as_dict(self) -> dict:
        return {"split": self.split, "val": self.val, "test": self.test, "best": self.best,
                "served": self.served, "reason": self.reason}  # fmt: skip


def score_frame(model: Any, frame: pd.DataFrame, window: int) -> dict[str, float]:
    X = frame[price_columns(window)].to_numpy(dtype=float)
    return forecast_scores(frame[CLOSE].to_numpy(dtype=float), model.predict(X), X[:, -1])


def run_backtest(
    windows: pd.DataFrame,
    candidates: dict[str, Any],
    window: int,
    *,
    test_days: int = 250,
    val_days: int = 250,
    significance: float | None = 0.05,
    progress=None,
) -> BacktestReport:
    """Fit every candidate on train, score val and test, apply the gate (module docstring)."""
    split = temporal_split(windows, window, test_days=test_days, val_days=val_days)
    X = split.train[price_columns(window)].to_numpy(dtype=float)
    y = split.train[CLOSE].to_numpy(dtype=float)
    models, val, test = {}, {}, {}
    for name, estimator in candidates.items():
        if progress is not None:
            progress(name)
        models[name] = clone(estimator).fit(X, y)
        val[name] = score_frame(models[name], split.val, window)
        test[name] = score_frame(models[name], split.test, window)
    challengers = [n for n in models if n != PERSISTENCE]
    best = min(challengers, key=lambda n: val[n]["mase"]) if challengers else PERSISTENCE
    best_mase, pvalue = test[best]["mase"], test[best]["dm_pvalue"]
    significant = significance is None or pvalue < significance
    if best != PERSISTENCE and best_mase < 1.0 and significant:
        served = best
        reason = (
            f"{best} beat persistence on the test days (MASE {best_mase:.4f} < 1, "
            f"Diebold-Mariano p = {pvalue:.3g})"
        )
    elif best != PERSISTENCE and best_mase < 1.0:
        served = PERSISTENCE
        reason = (
            f"{best} has test MASE {best_mase:.4f} < 1 but the Diebold-Mariano p = "
            f"{pvalue:.3g} >= {significance}: no better than persistence beyond chance; "
            "persistence serves"
        )
    else:
        served = PERSISTENCE
        reason = (
            f"nothing beat persistence: the best on validation, {best}, has test MASE "
            f"{best_mase:.4f} >= 1; persistence serves"
        )
    return BacktestReport(split.describe(), val, test, best, served, reason, models)
