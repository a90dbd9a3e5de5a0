"""The trigger receiving webhooks from a real Alertmanager (payload v4, bearer token).

Alertmanager forwards whatever anyone posts to its API, token attached: the
trigger launches only for models the (real, MLflow server) registry knows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from driftloop.settings import Settings
from driftloop.stack.services import alerting_binaries
from driftloop.stack.supervisor import Stack
from tests.conftest import REPO_ROOT, free_ports

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(alerting_binaries() is None, reason="prometheus-alertmanager not installed"),
]


@pytest.fixture
def stack(home, monkeypatch):
    # the worker process imports the stand-in job from the tests package
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    ports = ("trigger_port", "alertmanager_port", "mlflow_port")
    settings = Settings(
        home=home,
        **dict(zip(ports, free_ports(3), strict=True)),
        retrain_pipeline="tests.unit.test_trigger_jobs:quick_job",
        trigger_cooldown_s=0,
        stack_health_timeout_s=60,
    )
    stack = Stack(settings, "sentiment", alerting="prometheus", repeat_interval="2s")
    try:
        stack.up(only=["mlflow", "trigger", "alertmanager"])
        from mlflow import MlflowClient

        uri = stack.tracking_uri
        MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("sentiment")
        yield stack
    finally:
        stack.down(timeout_s=10)


def post_alert(stack: Stack, starts_at: str, **labels: str) -> None:
    alert = {
        "labels": {
            "alertname": "DriftDetected",
            "model": "sentiment",
            "severity": "warning",
            **labels,
        },
        "annotations": {"summary": "input drift"},
        "startsAt": starts_at,
    }
    response = httpx.post(f"{stack.url('alertmanager')}/api/v2/alerts", json=[alert], timeout=5)
    assert response.status_code == 200, response.text


def trigger_get(stack: Stack, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or stack.trigger_token()}"}
    return httpx.get(f"{stack.url('trigger')}{path}", headers=headers, timeout=5)


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_alertmanager_webhook_launches_one_run_and_repeats_are_deduplicated(stack):
    starts_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    post_alert(stack, starts_at)

    def decisions():
        return trigger_get(stack, "/decisions").json()["decisions"]

    launched = wait_for(
        lambda: [d for d in decisions() if d["outcome"] == "launched"], 30, "a launched decision"
    )[0]
    assert launched["model"] == "sentiment" and launched["alertname"] == "DriftDetected"
    assert launched["alert_status"] == "firing"
    assert len(launched["fingerprint"]) == 16  # Alertmanager's label-set fingerprint
    assert launched["starts_at"].startswith(starts_at[:19])
    assert launched["labels"]["severity"] == "warning"

    # Alertmanager keeps re-sending the same firing alert (group_interval/repeat_interval);
    # re-posting it to Alertmanager keeps its fingerprint and startsAt.
    post_alert(stack, starts_at)
    repeats = wait_for(
        lambda: [d for d in decisions() if d["outcome"] == "deduplicated"], 45, "a repeated webhook"
    )
    assert all(d["run_id"] == launched["run_id"] for d in repeats)
    assert all(d["fingerprint"] == launched["fingerprint"] for d in repeats)

    runs = trigger_get(stack, "/runs").json()["runs"]
    assert [r["run_id"] for r in runs] == [launched["run_id"]]
    wait_for(
        lambda: trigger_get(stack, "/runs").json()["runs"][0]["state"] == "succeeded", 30, "the run"
    )
    metrics = httpx.get(f"{stack.url('trigger')}/metrics", timeout=5).text
    assert 'outcome="launched",reason="DriftDetected"} 1.0' in metrics


def test_a_wrong_token_reaches_nothing(stack, home):
    # the generated token is what Alertmanager sends; anything else is refused
    assert trigger_get(stack, "/decisions", token="not-the-token").status_code == 401
    assert stack.token_file.stat().st_mode & 0o077 == 0, "token file must be private"
    config = (stack.dir / "alertmanager.yml").read_text()
    assert stack.trigger_token() not in config, "the token stays out of the config file"


def test_alerts_for_unregistered_models_posted_to_alertmanager_launch_nothing(stack):
    # anyone who reaches Alertmanager's API can post an alert; the token is Alertmanager's
    starts_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for index in range(5):
        post_alert(stack, starts_at, model=f"forged-{index}")

    def rejected():
        decisions = trigger_get(stack, "/decisions").json()["decisions"]
        return [d for d in decisions if d["outcome"] == "rejected"]

    found = wait_for(lambda: len(rejected()) >= 5 and rejected(), 45, "five rejections")
    assert {d["model"] for d in found} == {f"forged-{i}" for i in range(5)}
    assert all("not registered" in d["reason"] for d in found)
    assert trigger_get(stack, "/runs").json()["runs"] == []


def test_alertmanager_api_listens_on_loopback_only(stack):
    (service,) = [s for s in stack.services() if s.name == "alertmanager"]
    listen = [a for a in service.argv if a.startswith("--web.listen-address=")]
    assert listen == [f"--web.listen-address=127.0.0.1:{stack.settings.alertmanager_port}"]
