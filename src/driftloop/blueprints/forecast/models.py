"""Baselines the LSTM must beat, in the same run: persistence, random walk with drift, and a
ridge regression on lagged log returns. Each takes ``[n, window]`` closes (oldest first) and
predicts the next close; each records the drift reference of its training windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from driftloop.blueprints.forecast.windows import DriftReference, log_returns


def as_windows(X) -> np.ndarray:
    """``[n, window]`` closes from an array, or from a frame with a ``last_prices`` column of
    lists (the wire's shape: MLflow's input example, the smoke test, ``mlflow.pyfunc``)."""
    if isinstance(X, pd.DataFrame) and "last_prices" in X.columns:
        return np.array([list(map(float, row)) for row in X["last_prices"]], dtype=float)
    return np.asarray(X, dtype=float)


class PriceForecaster(BaseEstimator, RegressorMixin):
    """Common fit: check the windows, keep their drift reference, then ``_fit``."""

    kind = "forecaster"

    def fit(self, X, y):
        X = as_windows(X)
        y = np.asarray(y, dtype=float).reshape(-1)
        self.window_ = X.shape[1]
        self.reference_ = DriftReference.fit(X)
        self._fit(X, y)
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        pass


class PersistenceForecaster(PriceForecaster):
    """Tomorrow's close is today's: the bar every model must clear."""

    kind = "persistence"

    def predict(self, X):
        return as_windows(X)[:, -1]


class RandomWalkDriftForecaster(PriceForecaster):
    """Today's close grown by the training period's mean daily log return."""

    kind = "random_walk_drift"

    def _fit(self, X, y):
        self.drift_ = float(np.mean(np.log(y / X[:, -1])))

    def predict(self, X):
        return as_windows(X)[:, -1] * np.exp(self.drift_)


class LaggedReturnsForecaster(PriceForecaster):
    """Ridge regression of the next log return on the last ``lags`` log returns."""

    kind = "lagged_returns_ridge"

    def __init__(self, lags: int = 10, alpha: float = 1.0):
        self.lags = lags
        self.alpha = alpha

    def _features(self, X):
        return log_returns(as_windows(X))[:, -self.lags :]

    def _fit(self, X, y):
        # returns are ~1e-2: unscaled, any useful alpha would shrink the fit to nothing
        regressor = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        self.regressor_ = regressor.fit(self._features(X), np.log(y / X[:, -1]))

    def predict(self, X):
        X = as_windows(X)
        return X[:, -1] * np.exp(self.regressor_.predict(self._features(X)))


class LaggedReturnsBoostedForecaster(LaggedReturnsForecaster):
    """Gradient-boosted trees on the last ``lags`` log returns (non-linear, shallow, shrunk)."""

    kind = "lagged_returns_boosted"

    def __init__(self, lags: int = 10, max_iter: int = 100, learning_rate: float = 0.05,
                 max_depth: int = 3, random_state: int = 0):  # fmt: skip
        self.lags = lags
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state

    def _fit(self, X, y):
        from sklearn.ensemble import HistGradientBoostingRegressor

        regressor = HistGradientBoostingRegressor(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_depth=self.max_depth,
            random_state=self.random_state,
        )  # fmt: skip
        self.regressor_ = regressor.fit(self._features(X), np.log(y / X[:, -1]))


def training_series(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The closes the training windows were cut from: the first window, then each target
    (consecutive windows share all but one day); the targets alone when the windows are
    not consecutive (rows merged from feedback)."""
    consecutive = len(X) > 1 and np.allclose(X[1:, -1], y[:-1])
    return np.concatenate([X[0], y]) if consecutive else y


class StatsForecastForecaster(PriceForecaster):
    """statsforecast's AutoETS or AutoARIMA on log closes: the model (its order, its
    parameters) is chosen and fitted once on the training series; each forecast applies it
    to the request's window (``forward``: the fitted model filtered over the window, no refit),
    one step ahead."""

    def __init__(self, model: str = "auto_ets"):
        self.model = model

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.model

    def _fit(self, X, y):
        from statsforecast.models import AutoARIMA, AutoETS

        models = {"auto_ets": AutoETS, "auto_arima": AutoARIMA}
        if self.model not in models:
            raise ValueError(f"model: one of {', '.join(models)}, got {self.model!r}")
        # daily closes: no season (trading days have no stable weekly cycle)
        self.model_ = models[self.model](season_length=1).fit(np.log(training_series(X, y)))

    def predict(self, X):
        windows = np.log(as_windows(X))
        return np.exp([float(self.model_.forward(y=window, h=1)["mean"][0]) for window in windows])
