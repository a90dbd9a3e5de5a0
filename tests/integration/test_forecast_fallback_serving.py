"""The honest gate and the version's metadata, through the pipeline's own steps and a real
predictor: a series whose trend reverses on the test days, trained with random walk with drift
only (``--param``-style options recorded on the version). The evaluate step finds it loses to
persistence, registers persistence with the reason; the gate promotes it (MASE 1 is within the
ceiling); ``driftloop serve`` answers with persistence and ``GET /v2/models/NAME`` shows the
version, its hyperparameters, its test metrics and the fallback's reason."""

from __future__ import annotations

import json

import httpx
import mlflow
import pytest

from driftloop.blueprints import BlueprintSpec
from driftloop.blueprints.forecast.windows import price_columns
from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_FALLBACK, TAG_FALLBACK_REPLACED
from tests.integration.conftest_serving import running_predictor
from tests.integration.pipeline_steps import gate_step, run_until_registered
from tests.unit.test_forecast_fallback import WINDOW, reversing_closes, trend_then_reversal

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "trend-forecast"
OPTIONS = {"window": WINDOW, "test_days": 40, "val_days": 40, "epochs": 1, "hidden_size": 8}


def test_persistence_serves_and_its_metadata_says_why(home, tmp_path):
    from driftloop.registry import ModelRegistry

    frame = trend_then_reversal()
    source = tmp_path / "trend.csv"
    reversing_closes().to_csv(source, index=False)  # a daily-close CSV: date, close
    spec = BlueprintSpec("forecast", OPTIONS).to_text()
    run = run_until_registered(
        tmp_path / "steps", blueprint=spec, model_name=NAME, data_source=str(source),
        search=json.dumps({"candidates": ["random_walk_drift"], "trials": 0}),
    )  # fmt: skip
    assert run.outputs["test_metrics"]["mase"] == pytest.approx(1.0)
    run_data = mlflow.MlflowClient().get_run(run.outputs["run_id"]).data
    assert run_data.metrics["replaced_test_mase"] > 1.0
    assert run_data.tags[TAG_BEST_CANDIDATE] == "persistence"
    version = ModelRegistry().get_version(NAME, run.outputs["version"])
    assert version.tags[TAG_FALLBACK_REPLACED] == "random_walk_drift"
    reason = version.tags[TAG_FALLBACK]
    assert reason.startswith("no candidate beat persistence on the test period (40 days)")

    outcome, report = gate_step(run)
    assert outcome == "promote", report
    ModelRegistry().promote(NAME, run.outputs["version"])

    token = "meta"
    env = {"DRIFTLOOP_API_TOKEN": token, "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
           "DRIFTLOOP_STORE_URL": f"sqlite:///{home / 'store.db'}"}  # fmt: skip
    with running_predictor(NAME, home, env=env) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=30) as http:
            metadata = http.get(f"/v2/models/{NAME}")
            window = frame[price_columns(WINDOW)].iloc[-1].tolist()
            answer = http.post(
                f"/v1/models/{NAME}:predict",
                json={"instances": [{"last_prices": window}]},
                headers={"Authorization": f"Bearer {token}"},
            )
    assert metadata.status_code == 200, metadata.text
    body = metadata.json()
    assert body["versions"] == [run.outputs["version"]]
    described = body["parameters"]
    assert described["version"] == run.outputs["version"]
    assert described["blueprint"] == "forecast"
    assert {k: described["hyperparameters"][k] for k in OPTIONS} == OPTIONS
    assert described["candidate"] == "persistence"
    assert described["test_metrics"]["mase"] == pytest.approx(1.0)
    assert described["test_metrics"]["mae"] > 0
    assert described["tags"][TAG_FALLBACK] == reason
    assert described["registered_at"]
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert prediction["predicted_price"] == pytest.approx(window[-1], rel=1e-5)
    assert "drift_warning" in prediction
