"""driftloop's KFP path (``kfp.Client``, unmodified) against the v2beta1 REST paths.

No Kubeflow Pipelines backend runs here, so the server side is the loopback
server in ``kfp_api.py``; what is checked is what a real API server would
receive: the compiled retraining pipeline inline, caching off on every side-effecting task,
the alert's reason in the run name, the pipeline's own parameters, and the
run state driving the trigger's ledger.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from driftloop.pipelines_client import compiled_package
from driftloop.settings import Settings
from driftloop.trigger.launchers import KfpLauncher, RetrainRequest
from driftloop.trigger.ledger import RunRecord
from tests.conftest import free_port
from tests.integration.kfp_api import KfpApiServer

# no registry here: the alert names the blueprint, as Alertmanager's labels can
SENTIMENT_ALERT = {"blueprint": "sentiment"}

pytestmark = pytest.mark.integration
DRIFTLOOP = str(Path(sys.executable).parent / "driftloop")


@pytest.fixture
def kfp_api(monkeypatch):
    with KfpApiServer() as server:
        monkeypatch.setenv("KF_PIPELINES_ENDPOINT", server.url)
        monkeypatch.delenv("DRIFTLOOP_KFP_HOST", raising=False)
        yield server


def tasks_of(pipeline_spec: dict) -> dict:
    return pipeline_spec["root"]["dag"]["tasks"]


def test_launcher_submits_the_retraining_pipeline_with_side_effects_uncached(kfp_api, settings):
    launcher = KfpLauncher(Settings(home=settings.home, target="kubernetes"))
    request = RetrainRequest(
        run_id="r1", model="sentiment", reason="DriftDetected", labels=SENTIMENT_ALERT
    )

    launched = launcher.launch(request)

    (run,) = kfp_api.state.runs.values()
    assert launched.external_id == run["run_id"]
    assert run["display_name"].startswith("retrain-sentiment-DriftDetected-")
    (experiment,) = kfp_api.state.experiments.values()
    assert experiment["display_name"] == "driftloop-sentiment"
    assert run["experiment_id"] == experiment["experiment_id"]
    # with kubernetes platform config kfp sends both documents, as the KFP UI would
    spec = run["pipeline_spec"]["pipeline_spec"]
    assert "platform_spec" in run["pipeline_spec"]
    assert spec["pipelineInfo"]["name"] == "driftloop-retraining"
    # a cached register/promote step would silently skip its side effect: only the pure
    # steps (validate, split) may be replayed, and the run does not override the tasks
    every_task = dict(tasks_of(spec))
    for component in spec["components"].values():
        every_task.update(component.get("dag", {}).get("tasks", {}))
    cached = {
        name
        for name, task in every_task.items()
        if task.get("cachingOptions", {}).get("enableCache") is True
    }
    assert "register" in every_task and "promote" in every_task
    assert cached == {"validate", "split"}
    parameters = run["runtime_config"]["parameters"]
    assert parameters["model_name"] == "sentiment"
    assert parameters["reason"] == "DriftDetected"
    assert set(parameters) <= launcher.package_inputs()
    # the tasks take the store URL (with its credentials) from a Secret, not from KFP
    assert "store_url" not in parameters


def test_a_second_alert_reuses_the_experiment(kfp_api, settings):
    launcher = KfpLauncher(Settings(home=settings.home, target="kubernetes"))
    launcher.launch(
        RetrainRequest(
            run_id="r1", model="sentiment", reason="DriftDetected", labels=SENTIMENT_ALERT
        )
    )
    launcher.launch(
        RetrainRequest(
            run_id="r2", model="sentiment", reason="LiveScoreDrop", labels=SENTIMENT_ALERT
        )
    )
    assert len(kfp_api.state.experiments) == 1
    names = sorted(run["display_name"] for run in kfp_api.state.runs.values())
    assert names[0].startswith("retrain-sentiment-DriftDetected-")
    assert names[1].startswith("retrain-sentiment-LiveScoreDrop-")


@pytest.mark.parametrize(
    ("states", "expected"),
    [(["RUNNING"], "running"), (["SUCCEEDED"], "succeeded"), (["FAILED"], "failed")],
)
def test_poll_maps_kfp_run_states(kfp_api, settings, states, expected):
    launcher = KfpLauncher(Settings(home=settings.home, target="kubernetes"))
    launched = launcher.launch(
        RetrainRequest(run_id="r1", model="sentiment", reason="manual", labels=SENTIMENT_ALERT)
    )
    kfp_api.state.run_states[launched.external_id] = list(states)
    record = RunRecord(
        run_id="r1",
        model="sentiment",
        reason="manual",
        launcher="kfp",
        state="running",
        started_at=datetime.now(UTC),
        external_id=launched.external_id,
    )
    assert launcher.poll(record).state == expected


def test_pipelines_upload_creates_the_pipeline_then_versions(kfp_api, home):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [DRIFTLOOP, "pipelines", "upload", "retraining"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    paths = [upload["path"] for upload in kfp_api.state.uploads]
    assert paths == ["/apis/v2beta1/pipelines/upload", "/apis/v2beta1/pipelines/upload_version"]
    (pipeline,) = kfp_api.state.pipelines.values()
    assert pipeline["display_name"] == "driftloop-retraining"
    assert kfp_api.state.uploads[1]["query"]["pipelineid"] == [pipeline["pipeline_id"]]


@pytest.mark.slow
def test_trigger_on_the_kubernetes_target_launches_a_kfp_run(kfp_api, home):
    """The trigger process, a v4 webhook in, a KFP run out, the ledger following its state."""
    from mlflow import MlflowClient

    # the trigger launches only for models the registry knows
    MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"]).create_registered_model(
        "sentiment"
    )
    port = free_port()
    env = {
        **os.environ,
        "DRIFTLOOP_TARGET": "kubernetes",
        "DRIFTLOOP_TRIGGER_COOLDOWN_S": "0",
        "PYTHONWARNINGS": "ignore",
    }
    trigger = subprocess.Popen(
        [DRIFTLOOP, "trigger", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(base), 60, "the trigger to answer /healthz", trigger)
        webhook = {
            "version": "4",
            "status": "firing",
            "receiver": "driftloop-trigger",
            "groupKey": '{}:{alertname="FeedbackBacklog"}',
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "FeedbackBacklog",
                        "model": "sentiment",
                        **SENTIMENT_ALERT,
                    },
                    "startsAt": "2026-11-23T10:00:00Z",
                    "fingerprint": "f00dfeed",
                }
            ],
        }
        response = httpx.post(f"{base}/alerts", json=webhook, timeout=30)
        assert response.status_code == 200, response.text
        (decision,) = response.json()["decisions"]
        assert decision["outcome"] == "launched", decision
        (run,) = kfp_api.state.runs.values()
        assert "FeedbackBacklog" in run["display_name"]

        def ledger_state() -> str:
            runs = httpx.get(f"{base}/runs", timeout=10).json()["runs"]
            return runs[0]["state"] if runs else ""

        wait_until(lambda: ledger_state() == "succeeded", 30, "the run to succeed", trigger)
        assert compiled_package("retraining").is_file()
    finally:
        trigger.terminate()
        trigger.wait(timeout=15)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate, timeout_s: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited ({process.returncode}): {process.stderr.read()}")
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
