"""The forecast blueprint end to end: MSFT's recent closes split in time (train | gap | val),
the seed's LSTM, persistence and the lagged-returns ridge trained and ranked by the shared
``train_candidates``, registered in a private sqlite MLflow with the blueprint tagged, and
served by ``driftloop serve`` (a real KServe ModelServer on loopback). v1 and v2 answers
carry the price, ``drift_warning`` and ``drift_details``; a window from MSFT's October 2008
crash sets the warning, a recent calm one does not; a wrong count is a 400 naming it."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.blueprints.forecast.backtest import temporal_split
from driftloop.blueprints.forecast.windows import price_columns
from driftloop.datasets.prices import shipped_series
from tests.integration.conftest_serving import running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "f0recast"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WINDOW = 60
NAME = "msft-forecast"
STORE = {}  # the served predictor's store URL (the fixture's)


def register(tracking: str, home):
    from driftloop.lineage import version_tags
    from driftloop.registry import ModelRegistry, scoped_tracking_uri
    from driftloop.settings import Settings
    from driftloop.training.candidates import train_candidates

    # CPU-sized: 700 recent days, two LSTM epochs (the seed's shape: 2 layers, hidden 64)
    spec = BlueprintSpec("forecast", {"max_days": 700, "epochs": 2})
    blueprint = get_blueprint(spec)
    frame = blueprint.load("msft", None)
    split = temporal_split(frame, WINDOW, test_days=120, val_days=120)
    with scoped_tracking_uri(tracking):
        result = train_candidates(
            blueprint, split.train, split.val, seed=7, experiment="forecast-tests",
            settings=Settings(home=home),
            candidates=["lstm", "persistence", "lagged_returns_ridge"],
        )  # fmt: skip
    registry = ModelRegistry(tracking)
    tags = version_tags(
        dataset_fingerprint="test", split_fingerprints={}, metric_name="mase",
        metric_value=result.val_metrics["mase"], metric_split="val",
        blueprint=blueprint.spec, flavour=blueprint.flavour,
    )  # fmt: skip
    version = registry.register(NAME, result.run_id, tags=tags)
    registry.set_alias(NAME, "champion", version)
    return blueprint, result, split


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("forecast-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    blueprint, result, split = register(tracking, home)
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_STORE_URL": STORE.setdefault("url", f"sqlite:///{home / 'store.db'}"),
        "DRIFTLOOP_API_TOKEN": TOKEN,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    with running_predictor(NAME, home, env=env) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=30, headers=AUTH) as http:
            yield blueprint, result, split, http


def volatile_window() -> list[float]:
    """The 60 closes before 2008-10-31: MSFT in the financial crisis."""
    series = shipped_series("msft")
    end = int(np.flatnonzero(series["date"].to_numpy() <= "2008-10-31")[-1])
    return series["close"].to_numpy()[end - WINDOW : end].tolist()


def test_every_candidate_was_scored_against_persistence(served):
    _, result, _, _ = served
    assert result.best_candidate in {"lstm", "persistence", "lagged_returns_ridge"}
    assert np.isfinite(result.val_metrics["mase"])
    if result.best_candidate == "persistence":
        assert result.val_metrics["mase"] == pytest.approx(1.0)
    else:  # ranked below persistence's 1 on the validation days
        assert result.val_metrics["mase"] < 1.0


def test_v1_and_v2_answers_carry_the_drift_warning(served):
    blueprint, result, split, http = served
    calm = split.val[price_columns(WINDOW)].iloc[-1].tolist()
    crash = volatile_window()
    answer = http.post(
        f"/v1/models/{NAME}:predict", json={"instances": [{"last_prices": calm},
                                                          {"last_prices": crash}]}
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    calm_answer, crash_answer = answer.json()["predictions"]
    expected = result.model.predict(np.array([calm, crash]))
    # FP32 as declared: the price matches the model's to float32 precision
    assert calm_answer["predicted_price"] == pytest.approx(expected[0], rel=1e-4)
    assert calm_answer["drift_warning"] is False
    assert crash_answer["drift_warning"] is True
    assert "volatility" in json.loads(crash_answer["drift_details"])["outside_training_range"]
    assert calm_answer["served_model"] == result.model.kind

    body = {"inputs": [{"name": "last_prices", "datatype": "FP32", "shape": [2, WINDOW],
                        "data": [calm, crash]}]}  # fmt: skip
    v2 = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["drift_warning"]["data"] == [False, True]
    details = [json.loads(text) for text in outputs["drift_details"]["data"]]
    assert details[0]["outside_training_range"] == [] and details[1]["outside_training_range"]
    assert outputs["predicted_price"]["data"][0] == pytest.approx(expected[0], rel=1e-4)
    assert v2.json()["parameters"]["served_model"] == result.model.kind


def test_a_wrong_count_is_a_400_naming_it(served):
    _, _, split, http = served
    short = split.val[price_columns(WINDOW)].iloc[-1].tolist()[1:]
    answer = http.post(f"/v1/models/{NAME}:predict", json={"instances": [{"last_prices": short}]})
    assert answer.status_code == 400 and "has 59 values" in answer.text and "60" in answer.text
    body = {"inputs": [{"name": "last_prices", "datatype": "FP32", "shape": [1, 59],
                        "data": short}]}  # fmt: skip
    answer = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert answer.status_code == 400 and "[1, 59]" in answer.text


def test_an_observation_resolves_every_prediction_made_for_its_day(served):
    """Windows that name their series and target day (v1, and v2 BYTES inputs) are resolved
    by the day's observed close; a request of two days gets its truths day by day."""
    _, _, split, http = served
    window = split.val[price_columns(WINDOW)].iloc[-1].tolist()
    first = http.post(f"/v1/models/{NAME}:predict", json={"instances": [
        {"last_prices": window, "series": "msft", "date": "2017-11-13"},
        {"last_prices": window, "series": "msft", "date": "2017-11-14"},
    ]})  # fmt: skip
    assert first.status_code == 200, first.text
    body = {"inputs": [
        {"name": "last_prices", "datatype": "FP32", "shape": [1, WINDOW], "data": window},
        {"name": "series", "datatype": "BYTES", "shape": [1], "data": ["msft"]},
        {"name": "date", "datatype": "BYTES", "shape": [1], "data": ["2017-11-13"]},
    ]}  # fmt: skip
    second = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert second.status_code == 200, second.text
    unrelated = http.post(f"/v1/models/{NAME}:predict", json={"instances": [
        {"last_prices": window}]})  # fmt: skip
    assert unrelated.status_code == 200

    answer = http.post("/v1/feedback/observations",
                       json=[{"series": "msft", "date": "2017-11-13", "value": 84.09},
                             {"series": "msft", "date": "2017-12-01", "value": 84.26}])  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["resolved"] == 2
    assert [item["predictions"] for item in answer.json()["items"]] == [2, 0]

    from driftloop.store import PredictionStore

    store = PredictionStore(STORE["url"], run_migrations=False)
    try:
        truths = store.current_feedback_values(
            [first.json()["request_id"], second.json()["id"], unrelated.json()["request_id"]]
        )
        assert truths == {first.json()["request_id"]: [84.09, None],
                          second.json()["id"]: 84.09}  # fmt: skip
        http.post("/v1/feedback/observations",
                  json=[{"series": "msft", "date": "2017-11-14", "value": 84.07}])  # fmt: skip
        later = store.current_feedback_values([first.json()["request_id"]])
        assert later == {first.json()["request_id"]: [84.09, 84.07]}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([{"series": "msft", "date": "2017-11-13"}], "value"),
        ([{"series": "msft", "date": "13.11.2017", "value": 84.0}], "date"),
        ([{"date": "2017-11-13", "value": 84.0}], "series"),
        ([{"series": "msft", "date": "2017-11-13", "value": 84.0, "close": 1}], "close"),
        ([], "at least 1"),
        ({"series": "msft"}, "list"),
    ],
)
def test_a_bad_observation_is_a_4xx_naming_the_field(served, body, named):
    _, _, _, http = served
    answer = http.post("/v1/feedback/observations", json=body)
    assert 400 <= answer.status_code < 500 and named in answer.text, answer.text


def test_an_observed_close_the_model_cannot_take_names_it(served):
    _, _, split, http = served
    window = split.val[price_columns(WINDOW)].iloc[-1].tolist()
    http.post(f"/v1/models/{NAME}:predict", json={"instances": [
        {"last_prices": window, "series": "msft", "date": "2017-11-20"}]})  # fmt: skip
    answer = http.post("/v1/feedback/observations",
                       json=[{"series": "msft", "date": "2017-11-20", "value": -1}])  # fmt: skip
    assert answer.status_code == 422 and "[0].value" in answer.text and "positive" in answer.text
