"""Hostile input to the trigger and the monitor: auth, caps, odd bodies, secrets on disk."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient

from driftloop.monitor import app as monitor_app
from driftloop.monitor.service import MonitorService
from driftloop.security import (
    bearer_matches,
    mask_secrets,
    open_private,
    private_dir,
    secret_values,
)
from driftloop.settings import Settings
from driftloop.trigger import app as trigger_app
from driftloop.trigger.app import create_app
from driftloop.trigger.launchers import LaunchError, LocalLauncher, model_is_registered
from driftloop.trigger.service import TriggerService
from tests.conftest import REPO_ROOT
from tests.unit.conftest_monitor import ce_headers, v1_request
from tests.unit.test_trigger import alert, outcomes, wait_for_run, webhook

JOBS = "tests.unit.test_trigger_jobs"
HERE = "tests.unit.test_trigger_monitor_hardening"
PASSWORD = "s3cr3t-Pw-9f1c"
STORE_URL = f"postgresql://driftloop:{PASSWORD}@db.internal:5432/driftloop"
DEEP = b"[" * 100_000 + b"]" * 100_000


def leaky_job(model_name: str) -> dict:
    """A retraining job that says its store URL every way a real one might.

    Like a real task it finds the store through its settings (the environment
    the launcher hands down), not through an argument.
    """
    from driftloop.settings import get_settings

    store_url = get_settings().resolved_store_url
    print(f"connecting to {store_url}", flush=True)
    print(f"password alone: {PASSWORD}", file=sys.stderr, flush=True)
    subprocess.run(["echo", f"child process sees {store_url}"], check=True)
    raise RuntimeError(f"could not connect to {store_url}")


def trigger_client(home, *, known=("sentiment",), job="held_job", **overrides) -> TestClient:
    settings = Settings(home=home, retrain_pipeline=f"{JOBS}:{job}", **overrides)
    launcher = LocalLauncher(settings, env={"PYTHONPATH": str(REPO_ROOT)})
    service = TriggerService(settings, launcher=launcher, model_exists=lambda m: m in known)
    return TestClient(create_app(settings, service, watch_interval_s=0.1))


# --- trigger: which alerts may launch --------------------------------------------------
def test_alert_for_a_model_the_registry_does_not_know_is_rejected(home):
    with trigger_client(home, job="quick_job") as client:
        response = client.post("/alerts", json=webhook(alert(model="no-such-model")))
        assert response.status_code == 200
        (decision,) = response.json()["decisions"]
        assert decision["outcome"] == "rejected"
        assert "not registered" in decision["reason"]
        assert client.get("/runs").json()["runs"] == []
        metrics = client.get("/metrics").text
        assert 'model="no-such-model"' not in metrics  # forged labels do not grow series


def test_unreachable_registry_rejects_quickly(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")  # nothing listens there
    settings = Settings(home=home)
    started = time.monotonic()
    with pytest.raises(LaunchError):
        model_is_registered("sentiment", settings)
    assert time.monotonic() - started < 15
    with trigger_client(home) as client:
        client.app.state.service.model_exists = lambda m: model_is_registered(m, settings)
        (decision,) = client.post("/alerts", json=webhook(alert())).json()["decisions"]
        assert decision["outcome"] == "rejected"
        assert "registry could not confirm" in decision["reason"]


@pytest.mark.slow  # a fresh MLflow SQLite registry: a few seconds of migrations
def test_registry_lookup_answers_for_a_sqlite_registry(home):
    from mlflow import MlflowClient

    settings = Settings(home=home)
    uri = settings.resolved_tracking_uri
    MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("sentiment")
    assert model_is_registered("sentiment", settings) is True
    assert model_is_registered("forged-by-anyone", settings) is False


def test_global_cap_on_runs_in_flight(home):
    known = ("a", "b", "c")
    with trigger_client(home, known=known, trigger_max_concurrent_runs=2) as client:
        launched = [
            client.post("/alerts", json=webhook(alert(model=m, fingerprint=m))).json()["decisions"][
                0
            ]
            for m in ("a", "b")
        ]
        assert [d["outcome"] for d in launched] == ["launched", "launched"]
        capped = client.post("/alerts", json=webhook(alert(model="c", fingerprint="c")))
        assert outcomes(capped) == ["busy"]
        assert "trigger_max_concurrent_runs=2" in capped.json()["decisions"][0]["reason"]
        from tests.unit.test_trigger_jobs import release_path

        for decision in launched:
            release_path(decision["run_id"]).touch()
        for decision in launched:
            wait_for_run(client, decision["run_id"], "succeeded")
        again = client.post("/alerts", json=webhook(alert(model="c", fingerprint="c2")))
        assert outcomes(again) == ["launched"]
        release_path(again.json()["decisions"][0]["run_id"]).touch()
        wait_for_run(client, again.json()["decisions"][0]["run_id"], "succeeded")


# --- trigger: odd requests are 4xx -----------------------------------------------------
def test_non_ascii_bearer_is_a_401_not_a_500(home):
    with trigger_client(home, trigger_token="right-token") as client:
        for header in ("Bearer é", "Bearer \u00ff\u00fe", "Bearer", "bearer  right-token x"):
            response = client.post(  # raw UTF-8 bytes on the wire, as curl sends them
                "/alerts", json=webhook(alert()), headers={"Authorization": header.encode()}
            )
            assert response.status_code == 401, header
        good = client.post(
            "/alerts", json=webhook(alert()), headers={"Authorization": "Bearer right-token"}
        )
        assert good.status_code == 200


def test_deeply_nested_json_to_the_trigger_is_a_422(home):
    with trigger_client(home) as client:
        response = client.post(
            "/alerts", content=DEEP, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert "nested too deeply" in response.json()["detail"]


def test_chunked_body_over_the_trigger_cap_is_a_413(home, monkeypatch):
    monkeypatch.setattr(trigger_app, "MAX_WEBHOOK_BYTES", 10_000)
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b" " * 1000

    with trigger_client(home) as client:
        response = client.post(
            "/alerts", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        declared = client.post("/alerts", content=b"x", headers={"content-length": "999999999"})
        assert declared.status_code == 413


# --- monitor -------------------------------------------------------------------------------
def monitor_client(home, client=("testclient", 50000), **overrides) -> TestClient:
    service = MonitorService("sentiment", Settings(home=home, **overrides), watch=False)
    return TestClient(monitor_app.create_app(service), client=client)


def post_event(client: TestClient, headers: dict | None = None, event_id: str = "e1"):
    return client.post(
        "/events",
        content=v1_request(["fine"]),
        headers=ce_headers("request", event_id) | (headers or {}),
    )


def test_monitor_without_token_takes_loopback_clients_only(home):
    with monitor_client(home, client=("10.1.2.3", 40000)) as remote:
        response = post_event(remote)
        assert response.status_code == 401
        assert "DRIFTLOOP_MONITOR_TOKEN" in response.json()["detail"]
        assert remote.get("/healthz").status_code == 200  # probes stay open
    for loopback in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        with monitor_client(home, client=(loopback, 40000)) as local:
            assert post_event(local).status_code == 202, loopback


def test_monitor_token_is_required_from_everyone_when_set(home):
    with monitor_client(home, client=("127.0.0.1", 1), monitor_token="mon-token") as client:
        assert post_event(client).status_code == 401
        assert post_event(client, {"Authorization": "Bearer wrong"}).status_code == 401
        assert post_event(client, {"Authorization": "Bearer é".encode()}).status_code == 401
        ok = post_event(client, {"Authorization": "Bearer mon-token"})
        assert ok.status_code == 202


def test_deeply_nested_json_to_the_monitor_is_a_400(home):
    with monitor_client(home) as client:
        single = client.post("/events", content=DEEP, headers=ce_headers("request", "deep"))
        assert single.status_code == 400, single.text
        batch = client.post(
            "/events",
            content=DEEP,
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        assert batch.status_code == 400, batch.text
        structured = client.post(
            "/", content=DEEP, headers={"content-type": "application/cloudevents+json"}
        )
        assert structured.status_code == 400, structured.text


def test_chunked_body_over_the_monitor_cap_is_a_413(home, monkeypatch):
    monkeypatch.setattr(monitor_app, "MAX_EVENT_BYTES", 10_000)

    def chunks():
        for _ in range(100):
            yield b" " * 1000

    with monitor_client(home) as client:
        response = client.post("/events", content=chunks(), headers=ce_headers("request", "big"))
        assert response.status_code == 413


def test_payload_logger_sends_the_monitor_token(monkeypatch):
    from driftloop.serving.payload_logger import PayloadLogger
    from driftloop.serving.sink_connection import SinkAnswer

    seen = []

    class Connection:
        def post(self, body, headers):
            seen.append(dict(headers))
            return SinkAnswer(202, "application/json", b"{}")

    monkeypatch.setenv("DRIFTLOOP_MONITOR_TOKEN", "from-env")
    logger = PayloadLogger("http://127.0.0.1:9/", model_name="m")
    logger._post(Connection(), b"{}", {"content-type": "application/json"})
    explicit = PayloadLogger("http://127.0.0.1:9/", model_name="m", token="given")
    explicit._post(Connection(), b"{}", {})
    monkeypatch.delenv("DRIFTLOOP_MONITOR_TOKEN")
    PayloadLogger("http://127.0.0.1:9/", model_name="m")._post(Connection(), b"{}", {})
    assert seen[0]["authorization"] == "Bearer from-env"
    assert seen[0]["content-type"] == "application/json"
    assert seen[1]["authorization"] == "Bearer given"
    assert "authorization" not in seen[2]


# --- secrets and file modes ---------------------------------------------------------------
def test_mask_secrets_hides_url_passwords_and_tokens():
    text = f"url {STORE_URL} and Authorization: Bearer abc.def and token tok-123456"
    masked = mask_secrets(text, {"tok-123456"})
    assert PASSWORD not in masked and "abc.def" not in masked and "tok-123456" not in masked
    assert "postgresql://driftloop:***@db.internal:5432/driftloop" in masked
    assert mask_secrets("http://host:8080/path") == "http://host:8080/path"
    values = secret_values(Settings(store_url=STORE_URL, api_token="api-tok"), environ={})
    assert {PASSWORD, "api-tok"} <= values


def test_bearer_matches_compares_bytes():
    assert bearer_matches("Bearer tok", "tok")
    assert bearer_matches("bearer tok ", "tok")
    assert not bearer_matches("Bearer é", "tok")
    assert not bearer_matches("Basic tok", "tok")
    assert not bearer_matches(None, "tok")
    assert bearer_matches("Bearer " + "é".encode().decode("latin-1"), "é")


def test_private_helpers_make_0700_dirs_and_0600_files(tmp_path):
    directory = private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    with open_private(directory / "f.log", "ab") as handle:
        handle.write(b"x")
    assert stat.S_IMODE((directory / "f.log").stat().st_mode) == 0o600


def test_masked_output_covers_child_processes(tmp_path):
    script = (
        "import subprocess, sys\n"
        "from driftloop.security import masked_output\n"
        "with masked_output({'hunter22'}):\n"
        "    print('py hunter22 postgresql://u:pw@h/db', flush=True)\n"
        "    subprocess.run(['sh', '-c', 'echo child hunter22 >&2'])\n"
        "print('after', flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    combined = out.stdout + out.stderr
    assert "hunter22" not in combined and ":pw@" not in combined
    assert "py *** postgresql://u:***@h/db" in out.stdout
    assert "child ***" in out.stdout and "after" in out.stdout


def test_a_launch_never_writes_the_store_password_under_the_home(home):
    settings = Settings(home=home, retrain_pipeline=f"{HERE}:leaky_job", store_url=STORE_URL)
    launcher = LocalLauncher(
        settings,
        env={"PYTHONPATH": str(REPO_ROOT)},  # the store URL comes from the settings
    )
    service = TriggerService(settings, launcher=launcher, model_exists=lambda m: True)
    with TestClient(create_app(settings, service, watch_interval_s=0.1)) as client:
        response = client.post("/alerts", json=webhook(alert()))
        run_id = response.json()["decisions"][0]["run_id"]
        run = wait_for_run(client, run_id, "failed")
        assert "***" in (run["error"] or "")
        assert PASSWORD not in json.dumps(run)
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.name == "worker.log" for path in files)
    worker_log = next(path for path in files if path.name == "worker.log").read_text()
    assert "connecting to postgresql://driftloop:***@db.internal" in worker_log
    assert "child process sees" in worker_log
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    trigger_dir = home / "trigger"
    for path in [trigger_dir, *trigger_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, (path, oct(mode))
        elif not path.name.endswith(("-journal", "-wal", "-shm")):
            assert mode == 0o600, (path, oct(mode))
    assert os.access(trigger_dir / "trigger.db", os.R_OK)


def test_driftloop_status_masks_passwords(home):
    from driftloop.stack.status import collect_status
    from driftloop.stack.supervisor import Stack
    from driftloop.trigger.ledger import Decision, Ledger

    ledger = Ledger.at_home(home)
    ledger.record_decision(Decision(outcome="rejected", reason=f"launch failed: {STORE_URL}"))
    ledger.dispose()
    stack = Stack(Settings(home=home, store_url=STORE_URL), "sentiment", alerting="none")
    report = json.dumps(collect_status(stack))
    assert "launch failed: postgresql://driftloop:***@db.internal" in report
    assert PASSWORD not in report


def test_kfp_local_run_log_is_masked_line_by_line():
    import io

    from pipelines.local_run import _LogTap

    sink = io.StringIO()
    tap = _LogTap(sink, None, secrets={PASSWORD})
    # a secret split across writes is still masked: lines are masked whole
    tap.write(f"task args: store_url={STORE_URL[:30]}")
    tap.write(f"{STORE_URL[30:]}\npassword {PASSWORD[:5]}")
    tap.write(f"{PASSWORD[5:]} tail")
    tap.finish()
    assert PASSWORD not in sink.getvalue()
    assert "store_url=postgresql://driftloop:***@db.internal" in sink.getvalue()
    assert sink.getvalue().endswith("password *** tail")
