"""Estimators the unsupervised and forecasting tasks put at the end of a table pipeline.

They are pickled inside served models, so this module imports only numpy,
pandas and scikit-learn (the portability rule of ``training.model_logging``).

* ``DensityClusterer`` -- DBSCAN's clusters, with ``predict`` for new rows: the
  cluster of the nearest core point (noise: the nearest core point's cluster too,
  so every row gets a cluster id a client can act on);
* ``AnomalyDetector`` -- any sklearn outlier detector as an anomaly score (higher:
  more anomalous) and a flag at the share of training rows ``contamination``;
* ``LagForecaster`` and the baselines -- the next ``horizon`` values of a series
  from its last ``history`` values and the time of the last one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors


# --- clustering ----------------------------------------------------------------------
class DensityClusterer(ClusterMixin, BaseEstimator):
    """DBSCAN whose fitted clusters label new rows by their nearest core point.

    ``eps`` is a quantile of the distances to the ``min_samples``-th neighbour
    (``eps_quantile``), so one setting works for any scale of (scaled) features.
    """

    def __init__(self, eps_quantile: float = 0.8, min_samples: int = 10):
        self.eps_quantile = eps_quantile
        self.min_samples = min_samples

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        k = min(self.min_samples, len(X) - 1)
        distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
        self.eps_ = float(max(np.quantile(distances[:, -1], self.eps_quantile), 1e-9))
        dbscan = DBSCAN(eps=self.eps_, min_samples=k).fit(X)
        core = dbscan.core_sample_indices_
        if len(core) == 0:  # nothing dense: every row one cluster
            core, core_labels = np.arange(len(X)), np.zeros(len(X), dtype=int)
        else:
            core_labels = dbscan.labels_[core]
        self.core_labels_ = core_labels
        self.nearest_core_ = NearestNeighbors(n_neighbors=1).fit(X[core])
        self.labels_ = self.predict(X)
        self.n_clusters_ = int(len(np.unique(self.core_labels_)))
        return self

    def predict(self, X) -> np.ndarray:
        _, index = self.nearest_core_.kneighbors(np.asarray(X, dtype=float))
        return self.core_labels_[index[:, 0]]


# --- anomaly detection ---------------------------------------------------------------
class AnomalyDetector(BaseEstimator):
    """An outlier detector's anomaly score and a flag above the training rows' quantile.

    ``decision_function``: the anomaly score, higher is more anomalous (minus the
    detector's ``score_samples``). ``predict``: 1 for a flagged row, 0 otherwise;
    the threshold is the ``1 - contamination`` quantile of the training rows' scores.
    """

    def __init__(self, detector=None, contamination: float = 0.05):
        self.detector = detector
        self.contamination = contamination

    def fit(self, X, y=None):
        self.detector_ = clone(self.detector).fit(X)
        self.threshold_ = float(np.quantile(self.decision_function(X), 1 - self.contamination))
        return self

    def decision_function(self, X) -> np.ndarray:
        return -np.asarray(self.detector_.score_samples(X), dtype=float)

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > self.threshold_).astype(int)


# --- forecasting ---------------------------------------------------------------------
# The model input of a forecaster: one row per series window, the time of its last
# observation (``time_column``) and its recent values, oldest first (``value_column``,
# a list of at least ``history`` numbers; the last ``history`` are used).


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Each step repeats the value one season earlier ([n, history] -> [n, horizon])."""
    season = max(1, min(season, history.shape[1]))
    last_season = history[:, -season:]
    return np.stack([last_season[:, k % season] for k in range(horizon)], axis=1)


def naive_scale(history: np.ndarray, season: int) -> np.ndarray:
    """MASE's denominator per window: the in-sample MAE of the seasonal naive forecast."""
    season = max(1, min(season, history.shape[1] - 1))
    errors = np.abs(history[:, season:] - history[:, :-season])
    with np.errstate(all="ignore"):
        scale = np.nanmean(errors, axis=1)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


class Forecaster(BaseEstimator):
    """Common parameters; ``fit`` of a baseline learns nothing."""

    def __init__(
        self,
        time_column: str = "time",
        value_column: str = "value",
        history: int = 24,
        horizon: int = 12,
        season: int = 12,
        freq: str = "MS",
    ):
        self.time_column = time_column
        self.value_column = value_column
        self.history = history
        self.horizon = horizon
        self.season = season
        self.freq = freq

    def windows(self, X: pd.DataFrame) -> np.ndarray:
        """[n, history] recent values of each row."""
        return np.array(
            [np.asarray(values, dtype=float)[-self.history :] for values in X[self.value_column]],
            dtype=float,
        ).reshape(len(X), self.history)

    def fit(self, X, y=None):
        return self


class SeasonalNaiveForecaster(Forecaster):
    def predict(self, X) -> np.ndarray:
        return seasonal_naive(self.windows(X), self.horizon, self.season)


class DriftForecaster(Forecaster):
    """The last value plus the window's average step per step ahead (the "drift" method)."""

    def predict(self, X) -> np.ndarray:
        values = self.windows(X)
        slope = (values[:, -1] - values[:, 0]) / max(values.shape[1] - 1, 1)
        steps = np.arange(1, self.horizon + 1)
        return values[:, -1:] + slope[:, None] * steps[None, :]


class LagForecaster(Forecaster):
    """Gradient boosting on lag and calendar features, one model for every step ahead.

    Each window gives ``horizon`` training rows: its lags relative to the window's
    last-season level, the step ahead, and the calendar of the forecast time (month,
    day of week, hour); the target is the value at that step relative to the same
    level, so a trending series stays inside the range the trees saw.
    """

    def __init__(
        self,
        regressor=None,
        time_column: str = "time",
        value_column: str = "value",
        history: int = 24,
        horizon: int = 12,
        season: int = 12,
        freq: str = "MS",
    ):
        super().__init__(time_column, value_column, history, horizon, season, freq)
        self.regressor = regressor

    def _rows(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        values = self.windows(X)
        with np.errstate(all="ignore"):
            level = np.nanmean(values[:, -max(1, min(self.season, self.history)) :], axis=1)
        relative = values - level[:, None]
        last = pd.DatetimeIndex(pd.to_datetime(X[self.time_column], format="mixed"))
        offset = pd.tseries.frequencies.to_offset(self.freq)
        blocks = []
        for step in range(1, self.horizon + 1):
            moments = last + step * offset
            calendar = np.column_stack(
                [moments.month, moments.dayofweek, moments.hour, np.full(len(X), step)]
            )
            blocks.append(np.column_stack([relative, calendar]))
        return np.concatenate(blocks), level

    def fit(self, X, y=None):
        rows, level = self._rows(X)
        target = (np.asarray(y, dtype=float) - level[:, None]).T.reshape(-1)
        known = np.isfinite(target)
        self.regressor_ = clone(self.regressor).fit(rows[known], target[known])
        return self

    def predict(self, X) -> np.ndarray:
        rows, level = self._rows(X)
        relative = self.regressor_.predict(rows).reshape(self.horizon, len(X)).T
        return relative + level[:, None]
