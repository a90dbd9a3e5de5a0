"""Forecast candidates, their scores against persistence, the honest gate, and the wire format
(codec, drift warning, feedback) on short synthetic series."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.codec import InputError, InputTensor
from driftloop.blueprints.feedback import FeedbackError
from driftloop.blueprints.forecast.backtest import run_backtest, temporal_split
from driftloop.blueprints.forecast.lstm import LSTMForecaster
from driftloop.blueprints.forecast.metrics import forecast_scores
from driftloop.blueprints.forecast.models import (
    LaggedReturnsForecaster,
    PersistenceForecaster,
    RandomWalkDriftForecaster,
)
from driftloop.blueprints.forecast.windows import price_columns, window_frame

WINDOW = 20


def series(returns: np.ndarray) -> pd.DataFrame:
    dates = pd.bdate_range("2015-01-01", periods=len(returns) + 1)
    close = 50 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]))
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "close": close})


def mean_reverting(days: int, seed: int = 0) -> np.ndarray:
    """Log returns with lag-1 autocorrelation -0.6: tomorrow is partly predictable."""
    rng = np.random.default_rng(seed)
    returns = np.zeros(days)
    for t in range(1, days):
        returns[t] = -0.6 * returns[t - 1] + rng.normal(0, 0.01)
    return returns


def random_walk(days: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.01, days)


def test_scores_count_persistence_as_one():
    actual, last = np.array([10.0, 11.0, 12.0]), np.array([9.0, 10.0, 13.0])
    assert forecast_scores(actual, last, last)["mase"] == pytest.approx(1.0)
    scores = forecast_scores(actual, actual + 0.5, last)
    assert scores["mae"] == pytest.approx(0.5)
    assert scores["rmse"] == pytest.approx(0.5)
    assert scores["mase"] == pytest.approx(0.5)
    assert scores["mape"] == pytest.approx(100 * np.mean(0.5 / actual))


def test_baselines_predict_from_the_last_close():
    X = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])
    y = np.array([8.0, 3.0])
    assert np.allclose(PersistenceForecaster().fit(X, y).predict(X), [4.0, 3.0])
    drift = RandomWalkDriftForecaster().fit(X, y)
    assert drift.drift_ == pytest.approx(np.log(2) / 2)
    assert np.allclose(drift.predict(X), X[:, -1] * np.exp(np.log(2) / 2))


def test_temporal_split_leaves_gaps_of_at_least_the_window():
    frame = window_frame(series(random_walk(700)), WINDOW)
    split = temporal_split(frame, WINDOW, test_days=250, val_days=100)
    dates = frame["date"].tolist()
    assert len(split.test) == 250 and len(split.val) == 100
    train_end = dates.index(split.train["date"].iloc[-1])
    val_start, val_end = (
        dates.index(split.val["date"].iloc[0]),
        dates.index(split.val["date"].iloc[-1]),
    )
    test_start = dates.index(split.test["date"].iloc[0])
    assert val_start - train_end > WINDOW and test_start - val_end > WINDOW
    with pytest.raises(ValueError, match="gap: must be at least the window"):
        temporal_split(frame, WINDOW, gap=WINDOW - 1)


def test_gate_promotes_a_model_that_beats_persistence():
    frame = window_frame(series(mean_reverting(900)), WINDOW)
    candidates = {"persistence": PersistenceForecaster(), "ridge": LaggedReturnsForecaster(lags=3)}
    report = run_backtest(frame, candidates, WINDOW, test_days=250, val_days=200)
    assert report.test["persistence"]["mase"] == pytest.approx(1.0)
    assert report.test["ridge"]["mase"] < 0.95
    assert report.test["ridge"]["dm_pvalue"] < 0.05
    assert report.served == "ridge" and report.promoted


def test_diebold_mariano_pvalue_against_persistence():
    rng = np.random.default_rng(1)
    actual = 100 + np.cumsum(rng.normal(0, 1, 300))
    last = np.concatenate([[100.0], actual[:-1]])
    # halfway to the truth every day: clearly better than persistence
    assert forecast_scores(actual, (actual + last) / 2, last)["dm_pvalue"] < 1e-6
    # persistence plus noise: clearly worse
    assert forecast_scores(actual, last + rng.normal(0, 1, 300), last)["dm_pvalue"] > 0.99
    scores = forecast_scores([10.0, 11.0, 12.0, 13.0], [10.1, 10.9, 12.2, 12.8], [10.2, 10.8,
                             12.1, 13.3])  # fmt: skip
    assert 0 < scores["dm_pvalue"] < 1
    assert forecast_scores([1.0, 2.0], [1.5, 2.5], [1.5, 2.5])["dm_pvalue"] == 1.0


def test_gate_serves_persistence_when_nothing_beats_it():
    frame = window_frame(series(random_walk(900, seed=3)), WINDOW)

    class Lagging(PersistenceForecaster):  # yesterday's close: worse than today's
        kind = "lagging"

        def predict(self, X):
            return np.asarray(X)[:, -2]

    report = run_backtest(frame, {"persistence": PersistenceForecaster(), "lagging": Lagging()},
                          WINDOW, test_days=250, val_days=200)  # fmt: skip
    assert report.test["lagging"]["mase"] > 1
    assert report.served == "persistence" and not report.promoted
    assert "nothing beat persistence" in report.reason


@pytest.mark.slow
def test_lstm_scaler_sees_training_windows_only_and_pickles():
    frame = window_frame(series(random_walk(260)), WINDOW)
    train, later = frame.iloc[:150], frame.iloc[150:]
    X, y = train[price_columns(WINDOW)].to_numpy(float), train["close"].to_numpy(float)
    model = LSTMForecaster(hidden_size=8, epochs=2, batch_size=32).fit(X, y)
    assert model.price_min_ == pytest.approx(min(X.min(), y.min()))
    assert model.price_min_ + model.price_span_ == pytest.approx(max(X.max(), y.max()))
    assert model.epochs_done_ == 2
    windows = later[price_columns(WINDOW)].to_numpy(float)
    predicted = model.predict(windows)
    assert predicted.shape == (len(later),) and np.isfinite(predicted).all()
    restored = pickle.loads(pickle.dumps(model))
    assert np.allclose(restored.predict(windows), predicted)


@pytest.mark.slow
def test_window_scaled_lstm_forecasts_prices_outside_the_training_range():
    frame = window_frame(series(random_walk(200)), WINDOW)
    X, y = frame[price_columns(WINDOW)].to_numpy(float), frame["close"].to_numpy(float)
    model = LSTMForecaster(hidden_size=8, epochs=1, scaling="window").fit(X, y)
    # relative windows: ten times the prices, ten times the forecast
    assert np.allclose(model.predict(10 * X[:5]), 10 * model.predict(X[:5]), rtol=1e-5)
    with pytest.raises(ValueError, match="scaling"):
        LSTMForecaster(epochs=1, scaling="log").fit(X, y)


@pytest.fixture(scope="module")
def fitted():
    blueprint = get_blueprint("forecast", window=WINDOW)
    frame = window_frame(series(random_walk(400)), WINDOW)
    model = PersistenceForecaster().fit(blueprint.features(frame), blueprint.targets(frame))
    return blueprint, model, frame


def test_codec_answers_carry_the_price_and_a_drift_warning(fitted):
    blueprint, model, frame = fitted
    codec = blueprint.codec(model)
    calm = frame[price_columns(WINDOW)].iloc[-1].tolist()
    # a volatile window: daily moves of +-8 %, far beyond the training range
    volatile = list(50 * np.exp(np.cumsum(np.tile([0.08, -0.08], WINDOW // 2))))
    answer = codec.predict(codec.decode_v1([{"last_prices": calm}, {"last_prices": volatile}]))
    first, second = answer.instances
    assert first["predicted_price"] == pytest.approx(calm[-1])
    assert first["drift_warning"] is False and second["drift_warning"] is True
    details = json.loads(second["drift_details"])
    assert "volatility" in details["outside_training_range"]
    assert details["volatility"]["value"] > details["volatility"]["training_range"][1]
    assert answer.parameters == {"served_model": "persistence"}
    assert first["served_model"] == "persistence"
    tensor = InputTensor("last_prices", "FP32", np.array([calm], dtype=np.float32))
    v2 = codec.decode_v2({"last_prices": tensor})
    v2_answer = codec.predict(v2)
    assert v2_answer.instances[0]["drift_warning"] is False
    tensors = {name: array for name, _, array in v2_answer.tensors}
    assert json.loads(tensors["drift_details"][0])["outside_training_range"] == []


@pytest.mark.parametrize(
    ("instances", "named"),
    [
        ([{"last_prices": [1.0] * (WINDOW - 1)}], f"has {WINDOW - 1} values; .* exactly {WINDOW}"),
        ([{"last_prices": [1.0] * (WINDOW - 1) + [float("nan")]}], r"last_prices\[19\]"),
        ([{"last_prices": [1.0] * (WINDOW - 1) + [0.0]}], "finite positive"),
        ([{"prices": [1.0] * WINDOW}], r"instances\[0\] must be an object"),
    ],
)
def test_bad_requests_name_the_field(fitted, instances, named):
    blueprint, model, _ = fitted
    with pytest.raises(InputError, match=named):
        blueprint.codec(model).decode_v1(instances)


def test_v2_wrong_width_names_the_count(fitted):
    blueprint, model, _ = fitted
    tensor = InputTensor("last_prices", "FP32", np.ones((2, WINDOW + 1), dtype=np.float32))
    with pytest.raises(InputError, match=rf"\[2, {WINDOW + 1}\].*\[n, {WINDOW}\]"):
        blueprint.codec(model).decode_v2({"last_prices": tensor})


def test_feedback_live_mase_and_drift_groups(fitted):
    blueprint, model, frame = fitted
    outputs = [{"predicted_price": 11.0, "last_price": 10.0}, {"predicted_price": 20.0,
                "last_price": 21.0}]  # fmt: skip
    assert blueprint.feedback.live_score(outputs, [12.0, 19.0]) == pytest.approx(1.0 / 2.0)
    with pytest.raises(FeedbackError, match="positive close"):
        blueprint.feedback.parse(-3.0, outputs[:1])
    windows = blueprint.features(frame.head(5))
    groups = blueprint.drift_featurizer(model, frame).transform(
        windows, [{"predicted_price": float(w[-1])} for w in windows]
    )
    assert groups["returns"].shape == (5, 3) and np.allclose(groups["prediction"], 0.0)


def test_a_calmer_window_than_training_is_noted_not_warned(fitted):
    blueprint, model, _ = fitted
    flat = list(50 * np.exp(np.cumsum(np.tile([0.0005, -0.0005], WINDOW // 2))))
    answer = blueprint.codec(model).predict(
        blueprint.codec(model).decode_v1([{"last_prices": flat}])
    )
    details = json.loads(answer.instances[0]["drift_details"])
    assert answer.instances[0]["drift_warning"] is False
    assert "volatility" in details["below_training_range"]


def test_the_input_example_is_the_wire_shape_and_models_take_it(fitted):
    blueprint, model, frame = fitted
    example = blueprint.input_example(frame)
    assert list(example.columns) == ["last_prices"] and len(example["last_prices"][0]) == WINDOW
    assert np.allclose(model.predict(example), [row[-1] for row in example["last_prices"]])


def test_statsforecast_and_boosted_candidates_beat_persistence_on_a_predictable_series():
    from driftloop.blueprints.forecast.models import (
        LaggedReturnsBoostedForecaster,
        StatsForecastForecaster,
        training_series,
    )

    frame = window_frame(series(mean_reverting(700, seed=4)), WINDOW)
    train, test = frame.iloc[:450], frame.iloc[-200:]
    X, y = train[price_columns(WINDOW)].to_numpy(float), train["close"].to_numpy(float)
    # consecutive windows give back the series they were cut from
    assert np.allclose(training_series(X, y), series(mean_reverting(700, seed=4))["close"][:470])
    arima = StatsForecastForecaster("auto_arima").fit(X, y)
    boosted = LaggedReturnsBoostedForecaster(lags=3).fit(X, y)
    ets = pickle.loads(pickle.dumps(StatsForecastForecaster("auto_ets").fit(X, y)))
    X_test, last = test[price_columns(WINDOW)].to_numpy(float), test["p_1"].to_numpy(float)
    actual = test["close"].to_numpy(float)
    # returns with lag-1 autocorrelation -0.6: ARIMA's AR term and the trees both find it
    assert forecast_scores(actual, arima.predict(X_test), last)["mase"] < 0.95
    assert forecast_scores(actual, boosted.predict(X_test), last)["mase"] < 0.97
    ets_scores = forecast_scores(actual, ets.predict(X_test), last)
    assert np.isfinite(ets_scores["mase"]) and ets.kind == "auto_ets"
    with pytest.raises(ValueError, match="model: one of auto_ets, auto_arima"):
        StatsForecastForecaster("prophet").fit(X, y)


def test_feedback_rows_carry_the_target_date_when_the_request_named_one():
    blueprint = get_blueprint("forecast", window=WINDOW)
    window = list(np.linspace(10.0, 11.0, WINDOW))
    inputs = [{"last_prices": window, "series": "MSFT", "date": "2020-05-01"},
              {"last_prices": window}]  # fmt: skip
    rows = blueprint.rows_from_feedback(inputs, [11.5, 11.2])
    assert list(rows["date"]) == ["2020-05-01", ""] and list(rows["close"]) == [11.5, 11.2]
    assert rows[price_columns(WINDOW)].to_numpy().shape == (2, WINDOW)
