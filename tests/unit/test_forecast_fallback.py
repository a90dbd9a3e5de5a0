"""The forecast's honest gate through the shared pipeline steps: when the chosen model does not
beat persistence on the test period (MASE >= 1, or with ``dm_alpha`` a Diebold-Mariano p not
below it), the evaluate step logs persistence as the run's model and the register step's
version is persistence, tagged with why (``Blueprint.fallback``). The pipeline's steps and
the served metadata: tests/integration/test_forecast_fallback_serving.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.blueprints.forecast.backtest import temporal_split
from driftloop.blueprints.forecast.models import (
    PersistenceForecaster,
    RandomWalkDriftForecaster,
)
from driftloop.blueprints.forecast.windows import price_columns, window_frame

WINDOW = 10


def reversing_closes(days: int = 260, turn: int = 170) -> pd.DataFrame:
    """Daily closes that rise 0.5 % a day with small noise, then fall 0.5 % a day from
    ``turn``: a random walk with the training period's drift forecasts up while the test
    days go down."""
    rng = np.random.default_rng(3)
    returns = np.where(np.arange(days) < turn, 0.005, -0.005) + rng.normal(0, 0.001, days)
    close = 50 * np.exp(np.cumsum(returns))
    dates = pd.bdate_range("2019-01-01", periods=days).strftime("%Y-%m-%d")
    return pd.DataFrame({"date": dates, "close": close})


def trend_then_reversal() -> pd.DataFrame:
    return window_frame(reversing_closes(), WINDOW)


def fitted(model, frame: pd.DataFrame):
    return model.fit(frame[price_columns(WINDOW)].to_numpy(), frame["close"].to_numpy())


def blueprint(**options):
    return get_blueprint(BlueprintSpec("forecast", {"window": WINDOW, "test_days": 40,
                                                    "val_days": 40, **options}))  # fmt: skip


def test_a_model_that_loses_to_persistence_falls_back_to_it():
    frame = trend_then_reversal()
    split = temporal_split(frame, WINDOW, test_days=40, val_days=40)
    forecast = blueprint()
    drifting = fitted(RandomWalkDriftForecaster(), split.train)
    scores = forecast.score(drifting, split.test)
    assert scores["mase"] > 1.0
    fallback = forecast.fallback(drifting, split.test, scores)
    assert fallback is not None and fallback.candidate == "persistence"
    assert isinstance(fallback.model, PersistenceForecaster)
    assert fallback.reason.startswith("no candidate beat persistence on the test period (40 days)")
    assert f"MASE {scores['mase']:.4f}" in fallback.reason and "needs MASE < 1" in fallback.reason
    # persistence keeps the chosen model's training reference: drift warnings stay the same
    assert fallback.model.reference_ is drifting.reference_
    assert forecast.score(fallback.model, split.test)["mase"] == pytest.approx(1.0)
    # persistence itself is never replaced
    persistence = fitted(PersistenceForecaster(), split.train)
    kept = forecast.fallback(persistence, split.test, forecast.score(persistence, split.test))
    assert kept is None


def test_below_one_serves_unless_the_diebold_mariano_test_is_asked_for_and_fails():
    frame = trend_then_reversal()
    model = fitted(RandomWalkDriftForecaster(), frame)
    test = frame.tail(40)
    close_call = {"mase": 0.99, "dm_pvalue": 0.3}
    assert blueprint().fallback(model, test, close_call) is None
    fallback = blueprint(dm_alpha=0.05).fallback(model, test, close_call)
    assert fallback is not None and "DM p=0.3 (needs DM p < 0.05)" in fallback.reason
    assert blueprint(dm_alpha=0.05).fallback(model, test, {"mase": 0.9, "dm_pvalue": 0.01}) is None
    assert blueprint().fallback(model, test, {"mase": 1.0, "dm_pvalue": 0.5}) is not None


@pytest.mark.parametrize("value", ["0", "1.5", "often"])
def test_dm_alpha_must_be_a_level(value):
    with pytest.raises(ValueError, match="dm_alpha"):
        blueprint(dm_alpha=value)
