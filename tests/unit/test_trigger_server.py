"""The trigger refuses to be exposed without a token; launchers pick arguments by name."""

# no `from __future__ import annotations`: KFP reads the component annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.settings import Settings
from driftloop.trigger.launchers import (
    KfpLauncher,
    LocalLauncher,
    RetrainRequest,
    make_launcher,
    select_arguments,
)
from driftloop.trigger.payload import parse_rfc3339
from driftloop.trigger.server import TriggerConfigError, check_exposure, is_loopback, trigger_url


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host, settings):
    assert is_loopback(host)
    check_exposure(host, settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "trigger.example"])
def test_exposed_address_without_token_is_refused(host, settings):
    with pytest.raises(TriggerConfigError, match="DRIFTLOOP_TRIGGER_TOKEN"):
        check_exposure(host, settings)
    check_exposure(host, Settings(home=settings.home, trigger_token="t"))


def test_cli_refuses_in_one_line(home):
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "driftloop"),
            "trigger",
            "--host",
            "0.0.0.0",
            "--port",
            "18095",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DRIFTLOOP_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "DRIFTLOOP_TRIGGER_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_trigger_url_defaults_to_the_trigger_port(settings):
    assert (
        trigger_url(Settings(home=settings.home, trigger_port=18095))
        == "http://127.0.0.1:18095/alerts"
    )
    assert (
        trigger_url(Settings(home=settings.home, trigger_url="http://x/alerts"))
        == "http://x/alerts"
    )


def test_alertmanager_nanosecond_timestamps_parse():
    parsed = parse_rfc3339("2026-11-23T10:00:00.123456789Z")
    assert parsed.microsecond == 123456 and parsed.utcoffset().total_seconds() == 0
    assert parse_rfc3339("2026-11-23T12:00:00+02:00").hour == 10


def test_target_picks_the_launcher(settings):
    assert isinstance(make_launcher(settings), LocalLauncher)
    assert isinstance(make_launcher(Settings(home=settings.home, target="kubernetes")), KfpLauncher)


def test_arguments_are_chosen_by_the_pipeline_inputs(settings):
    request = RetrainRequest(run_id="r1", model="sentiment", reason="DriftDetected")
    assert select_arguments({"model_name", "reason", "other"}, request, settings) == {
        "model_name": "sentiment",
        "reason": "DriftDetected",
    }


def test_kfp_launcher_reads_inputs_of_a_compiled_pipeline(tmp_path, settings):
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11")
    def step(model_name: str, reason: str) -> str:
        return model_name + reason

    @dsl.pipeline(name="retraining")
    def retraining(model_name: str, reason: str = "manual", seed: int = 1):
        step(model_name=model_name, reason=reason)

    package = tmp_path / "retraining.yaml"
    compiler.Compiler().compile(retraining, str(package))
    launcher = KfpLauncher(Settings(home=settings.home, retrain_package=package))
    assert launcher.package_inputs() == {"model_name", "reason", "seed"}


def test_kubernetes_target_without_kfp_endpoint_is_a_recorded_rejection(settings, monkeypatch):
    from driftloop.trigger.payload import WebhookPayload
    from driftloop.trigger.service import TriggerService

    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    service = TriggerService(
        Settings(home=settings.home, target="kubernetes"), model_exists=lambda name: True
    )
    try:
        assert {"model_name", "reason"} <= service.launcher.package_inputs()
        payload = WebhookPayload.model_validate(
            {
                "version": "4",
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        # no champion here: the alert names the blueprint
                        "labels": {
                            "alertname": "DriftDetected",
                            "model": "sentiment",
                            "blueprint": "sentiment",
                        },
                        "startsAt": "2026-11-23T10:00:00Z",
                        "fingerprint": "abc",
                    }
                ],
            }
        )
        (decision,) = service.handle(payload)
        assert decision.outcome == "rejected"
        assert "KF_PIPELINES_ENDPOINT" in decision.reason
        assert service.ledger.runs() == []
        # not claimed: once KFP is reachable, the next re-send of this alert can launch
        assert service.ledger.seen_run("abc", "2026-11-23T10:00:00Z") is None
    finally:
        service.close()
