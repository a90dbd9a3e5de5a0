"""A forecast's drift warning and detectors on real MSFT windows, and its feedback by
observation: windows that name their series and target day, truths day by day, the live
MAE beside the live MASE."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.codec import InputError, InputTensor
from driftloop.blueprints.feedback import FeedbackError, ObservationKey
from driftloop.blueprints.forecast.models import PersistenceForecaster
from driftloop.blueprints.forecast.windows import window_frame
from driftloop.datasets.prices import shipped_series
from driftloop.monitor.champion import live_score
from driftloop.monitor.config import DEFAULT_CONFIG
from driftloop.monitor.reference import build_reference

WINDOW = 60


@pytest.fixture(scope="module")
def msft():
    """Persistence fitted on MSFT's calm 2004 - mid 2007 windows; every window of 2004-09."""
    blueprint = get_blueprint("forecast", window=WINDOW)
    series = shipped_series("msft")
    frame = window_frame(series[series["date"].between("2004-01-01", "2009-06-30")], WINDOW)
    train = frame[frame["date"] < "2007-07-01"]
    model = PersistenceForecaster().fit(blueprint.features(train), blueprint.targets(train))
    return blueprint, model, frame


def windows_between(frame, blueprint, first: str, last: str) -> np.ndarray:
    return blueprint.features(frame[frame["date"].between(first, last)])


def test_a_calm_window_is_not_warned_and_a_crisis_window_is(msft):
    blueprint, model, frame = msft
    codec = blueprint.codec(model)
    calm = windows_between(frame, blueprint, "2007-07-02", "2007-07-31")
    crisis = windows_between(frame, blueprint, "2008-10-01", "2008-11-30")
    answers = codec.predict(codec.decode_v1([{"last_prices": list(w)} for w in calm])).instances
    assert not any(a["drift_warning"] for a in answers)
    answers = codec.predict(codec.decode_v1([{"last_prices": list(w)} for w in crisis])).instances
    assert all(a["drift_warning"] for a in answers)
    details = json.loads(answers[0]["drift_details"])
    assert "volatility" in details["outside_training_range"]
    assert details["volatility"]["value"] > details["volatility"]["training_range"][1]


@pytest.mark.slow  # alibi-detect's import and fitting: ~12 s on 2 loaded cores
def test_the_default_detectors_see_the_volatile_regime_not_a_calm_one(msft):
    """The featurizer's KS detectors with a reference of held-out 2005-06 windows: the
    newest returns of a calm 2007 quarter pass, the 2008 crisis is drift on every group."""
    blueprint, model, frame = msft
    held_out = frame[frame["date"].between("2005-07-01", "2006-12-31")]
    bundle = build_reference(blueprint, model, held_out, config=DEFAULT_CONFIG, seed=0)

    def detected(windows: np.ndarray) -> dict[str, bool]:
        outputs = [{"predicted_price": float(w[-1])} for w in windows]
        results = bundle.detectors.run(bundle.featurizer.transform(windows, outputs))
        return {r.name: r.detected for r in results}

    calm = detected(windows_between(frame, blueprint, "2007-03-01", "2007-05-31"))
    crisis = detected(windows_between(frame, blueprint, "2008-09-15", "2008-12-12"))
    assert set(crisis) == {"ks-returns", "ks-rolling-volatility", "ks-prediction"}
    assert not calm["ks-returns"] and not calm["ks-prediction"]
    # persistence always predicts a zero log return: its prediction group cannot move
    assert crisis["ks-returns"] and crisis["ks-rolling-volatility"] and not crisis["ks-prediction"]


def test_windows_may_name_their_series_and_target_day(msft):
    blueprint, model, frame = msft
    codec = blueprint.codec(model)
    window = list(blueprint.features(frame.head(1))[0])
    batch = codec.decode_v1([
        {"last_prices": window, "series": "msft", "date": "2008-10-13"},
        {"last_prices": window},
    ])  # fmt: skip
    assert batch.summaries[0]["series"] == "msft" and batch.summaries[0]["date"] == "2008-10-13"
    keys = [blueprint.feedback.observation_key(s) for s in batch.summaries]
    assert keys == [ObservationKey("msft", "2008-10-13"), None]
    # v2: BYTES inputs beside the FP32 windows; the stored summaries replay as the same v2
    tensors = {
        "last_prices": InputTensor("last_prices", "FP32", np.array([window], dtype=np.float32)),
        "series": InputTensor("series", "BYTES", np.array([b"msft"], dtype=object)),
        "date": InputTensor("date", "BYTES", np.array([b"2008-10-13"], dtype=object)),
    }
    v2 = codec.decode_v2(tensors)
    assert v2.summaries[0]["date"] == "2008-10-13"
    names = [i["name"] for i in codec.v2_inputs(v2.summaries)]
    assert names == ["last_prices", "series", "date"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"series": "msft"}, r"instances\[0\]\.date is missing"),
        ({"date": "2008-10-13"}, r"instances\[0\]\.series is missing"),
        ({"series": "msft", "date": "13/10/2008"}, r"instances\[0\]\.date must be an ISO date"),
        ({"series": "msft", "date": "2008-02-30"}, r"instances\[0\]\.date must be an ISO date"),
        ({"series": "", "date": "2008-10-13"}, r"instances\[0\]\.series must be a non-empty"),
        ({"when": "2008-10-13"}, r"instances\[0\] has unknown field\(s\) \['when'\]"),
    ],
)
def test_a_bad_series_or_date_is_named(msft, extra, named):
    blueprint, model, frame = msft
    window = list(blueprint.features(frame.head(1))[0])
    with pytest.raises(InputError, match=named):
        blueprint.codec(model).decode_v1([{"last_prices": window, **extra}])


def test_truths_arrive_day_by_day_and_score_mae_and_mase():
    feedback = get_blueprint("forecast").feedback
    outputs = [{"predicted_price": 11.0, "last_price": 10.0},
               {"predicted_price": 20.0, "last_price": 21.0}]  # fmt: skip
    # the second day is not observed yet: null
    assert feedback.parse([12.0, None], outputs) == ([12.0, None], None)
    with pytest.raises(FeedbackError, match="no close"):
        feedback.parse([None, None], outputs)
    with pytest.raises(FeedbackError, match=r"value\[1\] must be a finite positive close"):
        feedback.parse([12.0, -1.0], outputs)
    assert feedback.live_metrics(outputs, [12.0, 19.0]) == pytest.approx({"mae": 1.0, "mase": 0.5})

    class Pair:
        def __init__(self, outputs, value):
            self.outputs, self.value = outputs, value

    # the monitor scores observed days only, and exports MAE beside the MASE
    score = live_score(feedback, [Pair(outputs, [12.0, None]), Pair(outputs[1:], 19.0)],
                       min_samples=2)  # fmt: skip
    assert score.samples == 2 and score.value == pytest.approx(0.5)
    assert score.metrics == pytest.approx({"mae": 1.0, "mase": 0.5})


def test_live_mae_and_mase_are_exported_and_follow_the_champion():
    from driftloop.monitor.metrics import MonitorMetrics

    metrics = MonitorMetrics()
    metrics.set_live_score("m", "1", value=1.2, samples=40, metrics={"mae": 0.31, "mase": 1.2})
    text = metrics.render().decode()
    assert 'driftloop_live_metric{metric="mae",model="m",version="1"} 0.31' in text
    assert 'driftloop_live_metric{metric="mase",model="m",version="1"} 1.2' in text
    metrics.set_live_score("m", "1", value=None, samples=3, metrics={})  # too few pairs now
    assert "driftloop_live_metric{" not in metrics.render().decode()
    metrics.set_live_score("m", "1", value=1.2, samples=40, metrics={"mae": 0.31})
    metrics.forget_version("m", "1")
    assert "driftloop_live_metric{" not in metrics.render().decode()


def test_residuals_of_the_crisis_are_drift_and_calm_ones_are_not(msft):
    """The monitor's online residual test on persistence's real errors: a reference of
    early 2007 days, then windows of later 2007 days (calm) and of the 2008 crisis."""
    from driftloop.monitor.residuals import ResidualWatch

    blueprint, model, frame = msft
    feedback = blueprint.feedback

    class Pair:
        def __init__(self, request_id, output, value):
            self.request_id, self.outputs, self.value = request_id, [output], value

    def pairs(first: str, last: str) -> list:
        rows = frame[frame["date"].between(first, last)]
        predicted = model.predict(blueprint.features(rows))
        return [
            Pair(day, {"predicted_price": float(p)}, float(close))
            for day, p, close in zip(rows["date"], predicted, rows["close"], strict=True)
        ]

    watch = ResidualWatch(reference_size=60, window=30, p_val=0.01)
    assert watch.add_pairs(feedback, pairs("2007-01-01", "2007-03-31")) == []
    calm = watch.add_pairs(feedback, pairs("2007-04-01", "2007-06-30"))
    assert calm and not any(test.detected for test in calm)  # after 60 reference days
    assert watch.add_pairs(feedback, pairs("2007-04-01", "2007-06-30")) == []  # seen once only
    crisis = watch.add_pairs(feedback, pairs("2008-09-15", "2008-12-31"))
    assert len(crisis) >= 2 and all(test.detected for test in crisis)
    assert crisis[0].window_median > 2 * crisis[0].reference_median
