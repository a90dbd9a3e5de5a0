"""Trigger policy and webhook receiver, with a real worker-process launcher."""

from __future__ import annotations

import ast
import json
import os
import time

import pytest
from fastapi.testclient import TestClient

from driftloop.settings import Settings
from driftloop.trigger.app import create_app
from driftloop.trigger.launchers import LocalLauncher, RetrainRequest
from driftloop.trigger.service import TriggerService
from tests.conftest import REPO_ROOT
from tests.unit.test_trigger_jobs import release_path

JOBS = "tests.unit.test_trigger_jobs"


def alert(
    model="sentiment",
    name="DriftDetected",
    fingerprint="fp1",
    starts="2026-11-23T10:00:00.123456789Z",
    status="firing",
):
    labels = {"alertname": name, "severity": "warning"}
    if model:
        labels["model"] = model
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "drift"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": fingerprint,
    }


def webhook(*alerts, status="firing"):
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DriftDetected"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "driftloop-trigger",
        "groupLabels": {"alertname": "DriftDetected"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": list(alerts),
    }


def make_client(home, job="held_job", **overrides) -> TestClient:
    settings = Settings(home=home, retrain_pipeline=f"{JOBS}:{job}", **overrides)
    launcher = LocalLauncher(settings, env={"PYTHONPATH": str(REPO_ROOT)})
    # every model these tests alert on counts as registered (the registry check has its own)
    service = TriggerService(settings, launcher=launcher, model_exists=lambda name: True)
    return TestClient(create_app(settings, service, watch_interval_s=0.1))


def wait_for_run(client, run_id, state, timeout=30.0, headers=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = {r["run_id"]: r for r in client.get("/runs", headers=headers).json()["runs"]}
        if runs[run_id]["state"] == state:
            return runs[run_id]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {state}: {runs[run_id]}")


def outcomes(response):
    assert response.status_code == 200, response.text
    return [d["outcome"] for d in response.json()["decisions"]]


def test_firing_alert_launches_once_and_repeats_are_deduplicated(home):
    with make_client(home) as client:
        first = client.post("/alerts", json=webhook(alert()))
        assert outcomes(first) == ["launched"]
        run_id = first.json()["decisions"][0]["run_id"]
        assert run_id.startswith("retrain-sentiment-")
        # Alertmanager repeats the same alert (same fingerprint + startsAt) while it fires
        for _ in range(3):
            repeat = client.post("/alerts", json=webhook(alert()))
            assert outcomes(repeat) == ["deduplicated"]
            assert repeat.json()["decisions"][0]["run_id"] == run_id
        running = client.get("/runs").json()["runs"]
        assert [r["state"] for r in running] == ["running"]
        worker_pid = running[0]["pid"]
        assert worker_pid and worker_pid != os.getpid()

        release_path(run_id).touch()
        done = wait_for_run(client, run_id, "succeeded")
        assert done["outputs"] == {
            "model": "sentiment",
            "reason": "DriftDetected",
            "pid": worker_pid,
        }
        assert done["duration_s"] > 0

        decisions = client.get("/decisions").json()["decisions"]
        assert [d["outcome"] for d in decisions] == ["deduplicated"] * 3 + ["launched"]
        assert decisions[-1]["labels"] == {
            "alertname": "DriftDetected",
            "severity": "warning",
            "model": "sentiment",
        }
        metrics = client.get("/metrics").text
        runs_total = (
            'driftloop_retrain_runs_total{model="sentiment",outcome="%s",reason="DriftDetected"}'
        )
        assert runs_total % "launched" + " 1.0" in metrics
        assert runs_total % "deduplicated" + " 3.0" in metrics
        assert runs_total % "succeeded" + " 1.0" in metrics
        duration = (
            'driftloop_retrain_run_duration_seconds_count{model="sentiment",outcome="succeeded"}'
        )
        assert duration + " 1.0" in metrics


def test_one_run_per_model_at_a_time_then_cooldown(home):
    with make_client(home, trigger_cooldown_s=3600) as client:
        first = client.post("/alerts", json=webhook(alert(fingerprint="a")))
        run_id = first.json()["decisions"][0]["run_id"]
        # a different alert for the same model while the run is in flight
        busy = client.post("/alerts", json=webhook(alert(name="FeedbackBacklog", fingerprint="b")))
        assert outcomes(busy) == ["busy"]
        assert run_id in busy.json()["decisions"][0]["reason"]
        # another model is independent
        other = client.post("/alerts", json=webhook(alert(model="churn", fingerprint="c")))
        assert outcomes(other) == ["launched"]
        other_id = other.json()["decisions"][0]["run_id"]

        release_path(run_id).touch()
        release_path(other_id).touch()
        wait_for_run(client, run_id, "succeeded")
        cooling = client.post("/alerts", json=webhook(alert(name="LiveScoreDrop", fingerprint="d")))
        assert outcomes(cooling) == ["cooling_down"]
        assert "cooldown" in cooling.json()["decisions"][0]["reason"]
        wait_for_run(client, other_id, "succeeded")


def test_no_cooldown_allows_the_next_alert_after_the_run(home):
    with make_client(home, job="quick_job", trigger_cooldown_s=0) as client:
        first = client.post("/alerts", json=webhook(alert(fingerprint="a")))
        wait_for_run(client, first.json()["decisions"][0]["run_id"], "succeeded")
        second = client.post(
            "/alerts", json=webhook(alert(fingerprint="a", starts="2026-11-23T11:00:00Z"))
        )
        assert outcomes(second) == ["launched"], "a new startsAt is a new alert instance"


def test_resolved_and_unlabelled_alerts_do_not_launch(home):
    with make_client(home, job="quick_job") as client:
        response = client.post(
            "/alerts",
            json=webhook(
                alert(status="resolved"), alert(model=None, fingerprint="x"), status="resolved"
            ),
        )
        assert outcomes(response) == ["resolved_ignored", "rejected"]
        assert "no 'model' label" in response.json()["decisions"][1]["reason"]
        assert client.get("/runs").json()["runs"] == []


def test_dedupe_survives_a_restart(home):
    with make_client(home, job="quick_job") as client:
        run_id = client.post("/alerts", json=webhook(alert())).json()["decisions"][0]["run_id"]
        wait_for_run(client, run_id, "succeeded")
    with make_client(home, job="quick_job", trigger_cooldown_s=0) as restarted:
        again = restarted.post("/alerts", json=webhook(alert()))
        assert outcomes(again) == ["deduplicated"]
        assert [r["run_id"] for r in restarted.get("/runs").json()["runs"]] == [run_id]


def test_failed_run_is_recorded_with_its_error(home):
    with make_client(home, job="failing_job") as client:
        run_id = client.post("/alerts", json=webhook(alert())).json()["decisions"][0]["run_id"]
        failed = wait_for_run(client, run_id, "failed")
        assert "training data for sentiment is empty" in failed["error"]
        assert "driftloop_retrain_runs_total" in client.get("/metrics").text


def test_unimportable_pipeline_is_a_failed_run_not_a_crash(home):
    with make_client(home, job="no_such_job") as client:
        run_id = client.post("/alerts", json=webhook(alert())).json()["decisions"][0]["run_id"]
        failed = wait_for_run(client, run_id, "failed")
        assert "cannot import pipeline" in failed["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "4", "status": "firing"}, "alerts"),
        ({**webhook(alert()), "version": "3"}, "version"),
        (webhook({k: v for k, v in alert().items() if k != "fingerprint"}), "alerts.0.fingerprint"),
        (webhook({**alert(), "startsAt": "yesterday"}), "alerts.0.startsAt"),
        (webhook({**alert(), "status": "pending"}), "alerts.0.status"),
    ],
)
def test_bad_payload_is_a_422_naming_the_field_and_is_recorded(home, body, field):
    with make_client(home, job="quick_job") as client:
        response = client.post("/alerts", json=body)
        assert response.status_code == 422
        assert field in response.json()["detail"]
        decisions = client.get("/decisions").json()["decisions"]
        assert decisions[0]["outcome"] == "rejected" and field in decisions[0]["reason"]
        assert client.get("/runs").json()["runs"] == []


def test_non_json_body_is_a_422(home):
    with make_client(home, job="quick_job") as client:
        response = client.post(
            "/alerts", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 422 and "JSON" in response.json()["detail"]


def test_a_kfp_pipeline_runs_through_the_configured_runner(home):
    settings = Settings(
        home=home,
        retrain_pipeline=f"{JOBS}:fake_kfp_pipeline",
        retrain_runner=f"{JOBS}:recording_runner",
    )
    launcher = LocalLauncher(settings, env={"PYTHONPATH": str(REPO_ROOT)})
    launcher.launch(RetrainRequest(run_id="r1", model="sentiment", reason="DriftDetected"))
    assert launcher._processes["r1"].wait(timeout=60) == 0
    result = json.loads((launcher.run_dir("r1") / "result.json").read_text())
    assert result["state"] == "succeeded", result
    assert result["outputs"] == {
        "ran": "FakeKfpPipeline",
        "arguments": {"model_name": "sentiment", "reason": "DriftDetected"},
        "home": str(home),
    }


def test_the_trigger_does_not_import_the_pipelines_package():
    """Dependency direction: pipelines -> trigger, never back (the runner is configuration)."""
    modules = [*(REPO_ROOT / "src" / "driftloop" / "trigger").glob("*.py")]
    modules.append(REPO_ROOT / "src" / "driftloop" / "pipelines_client.py")
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] == "pipelines"], (path.name, names)


def test_bearer_token_is_required_when_configured(home):
    with make_client(home, job="quick_job", trigger_token="s3cret") as client:
        assert client.post("/alerts", json=webhook(alert())).status_code == 401
        wrong = client.post(
            "/alerts", json=webhook(alert()), headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        assert client.get("/decisions").status_code == 401
        assert client.get("/decisions").json() == {
            "detail": "missing or wrong bearer token in the Authorization header"
        }
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        auth = {"Authorization": "Bearer s3cret"}
        ok = client.post("/alerts", json=webhook(alert()), headers=auth)
        assert outcomes(ok) == ["launched"]
        assert len(client.get("/decisions", headers=auth).json()["decisions"]) == 1
        wait_for_run(client, ok.json()["decisions"][0]["run_id"], "succeeded", headers=auth)


def test_a_warm_launcher_runs_the_worker_in_its_step_host(home, monkeypatch):
    """The worker process only hands its spec to the warm host; a child of it runs the job."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # the host imports the jobs module
    settings = Settings(home=home, retrain_pipeline=f"{JOBS}:quick_job")
    launcher = LocalLauncher(settings, warm_steps=True, step_host_modules=[JOBS])
    host = launcher._host
    try:
        assert host is not None and host.alive()
        launcher.launch(RetrainRequest(run_id="r1", model="sentiment", reason="DriftDetected"))
        worker = launcher._processes["r1"]
        assert worker.wait(timeout=60) == 0
        result = json.loads((launcher.run_dir("r1") / "result.json").read_text())
        assert result["state"] == "succeeded", result
        assert result["outputs"]["model"] == "sentiment"
        assert result["outputs"]["pid"] not in (worker.pid, os.getpid(), host.process.pid)
    finally:
        launcher.close()
    assert not host.alive()
