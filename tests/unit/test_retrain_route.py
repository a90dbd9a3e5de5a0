"""``POST /retrain`` on the trigger and ``driftloop retrain``: a run of the champion's
blueprint launched now, with ``--param`` options over the champion's (a real sqlite registry,
the real worker-process launcher; the pipeline is a small function reporting its inputs)."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from driftloop.cli.train import parse_params
from tests.conftest import REPO_ROOT

FORECAST = json.dumps({"name": "forecast", "options": {"hidden_size": 64, "window": 60}})
TOKEN = "retrain-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def blueprint_job(model_name: str, blueprint: str) -> dict:
    """Stands in for the retraining pipeline: reports the blueprint it was asked to train."""
    return {"model": model_name, "blueprint": json.loads(blueprint)}


@pytest.fixture
def champion(home):
    from mlflow import MlflowClient

    from driftloop.lineage import TAG_BLUEPRINT
    from driftloop.settings import Settings

    settings = Settings(home=home)
    uri = settings.resolved_tracking_uri
    client = MlflowClient(uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("e", artifact_location=(home / "a").as_uri()))
    client.create_registered_model("prices")
    source = f"{run.info.artifact_uri}/model"
    tags = {TAG_BLUEPRINT: FORECAST}
    version = client.create_model_version("prices", source, run_id=run.info.run_id, tags=tags)
    client.set_registered_model_alias("prices", "champion", version.version)
    return settings


def client_for(settings, **service_options) -> TestClient:
    from driftloop.settings import Settings
    from driftloop.trigger.app import create_app
    from driftloop.trigger.launchers import LocalLauncher
    from driftloop.trigger.service import TriggerService

    settings = Settings(home=settings.home, trigger_token=TOKEN,
                        retrain_pipeline="tests.unit.test_retrain_route:blueprint_job")  # fmt: skip
    launcher = LocalLauncher(settings, env={"PYTHONPATH": str(REPO_ROOT)})
    return TestClient(
        create_app(
            settings,
            TriggerService(settings, launcher=launcher, **service_options),
            watch_interval_s=0.1,
        )
    )


@pytest.mark.slow  # a sqlite registry and a worker process: ~50 s on a loaded 2-core box
def test_the_route_launches_the_champions_blueprint_with_the_params_over_its_options(champion):
    with client_for(champion) as client:
        assert client.post("/retrain", json={"model": "prices"}).status_code == 401
        params = {"hidden_size": 128, "learning_rate": 5e-4}
        answer = client.post("/retrain", headers=AUTH, json={"model": "prices", "params": params})
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        assert "hidden_size=128" in answer.json()["reason"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = {r["run_id"]: r for r in client.get("/runs", headers=AUTH).json()["runs"]}
            if runs[run_id]["state"] != "running":
                break
            time.sleep(0.2)
        assert runs[run_id]["state"] == "succeeded", runs[run_id]
        options = runs[run_id]["outputs"]["blueprint"]["options"]
        assert options == {"hidden_size": 128, "learning_rate": 5e-4, "window": 60}

        bad = {"model": "prices", "params": {"hidden_size": "big"}}
        refused = client.post("/retrain", headers=AUTH, json=bad)
        assert refused.status_code == 422 and "hidden_size" in refused.json()["detail"]
        unknown = client.post("/retrain", headers=AUTH, json={"model": "nope"})
        assert unknown.status_code == 404 and "not registered" in unknown.json()["reason"]


def test_the_route_needs_the_token_a_model_and_a_registered_one(settings):
    with client_for(settings, model_exists=lambda name: name == "prices") as client:
        assert client.post("/retrain", json={"model": "prices"}).status_code == 401
        no_model = client.post("/retrain", headers=AUTH, json={"params": {}})
        assert no_model.status_code == 422 and "model" in no_model.json()["detail"]
        nested = client.post("/retrain", headers=AUTH, json={"model": "x", "params": {"a": [1]}})
        assert nested.status_code == 422 and "params.a" in nested.json()["detail"]
        unknown = client.post("/retrain", headers=AUTH, json={"model": "nope"})
        assert unknown.status_code == 404 and "not registered" in unknown.json()["reason"]
        assert client.get("/runs", headers=AUTH).json()["runs"] == []


def test_params_parse_as_numbers_booleans_or_text():
    assert parse_params(["hidden_size=128", "learning_rate=5e-4", "series=MSFT", "flag=true"]) == {
        "hidden_size": 128, "learning_rate": 5e-4, "series": "MSFT", "flag": True,
    }  # fmt: skip
    from driftloop.cli import UserError

    with pytest.raises(UserError, match="--param: expected NAME=VALUE"):
        parse_params(["hidden_size"])
