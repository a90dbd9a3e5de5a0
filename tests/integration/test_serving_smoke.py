"""smoke_serve: this predictor in a separate process on a registered version, and its failures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from driftloop.serving.smoke import SmokeServeError, smoke_serve
from driftloop.step_host import ENV_VAR, StepHost, run_step
from tests.integration.conftest_serving import register_text_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_smoke_serve_answers_and_fails_clearly(home):
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, "sentiment", alias=None)
    result = smoke_serve(f"models:/sentiment/{version}", ["great product", "awful"], timeout_s=120)
    assert result["ok"] is True
    assert result["model_version"] == version
    assert [p["label"] for p in result["predictions"]] == ["positive", "negative"]
    assert result["latency_ms"] > 0
    print(f"smoke v2 latency {result['latency_ms']:.1f} ms")
    # nothing of the smoke run leaks into the real prediction store
    assert not (home / "store.db").exists()

    with pytest.raises(SmokeServeError, match="cannot load"):
        smoke_serve("models:/sentiment/99", ["x"], timeout_s=120)
    with pytest.raises(SmokeServeError, match="no sample"):
        smoke_serve(f"models:/sentiment/{version}", [])


def test_smoke_serve_in_a_warm_step_host_forks_its_predictor(home, monkeypatch):
    """In the step host's child (kserve preloaded) the predictor is forked, not a fresh
    Python, and the same checks pass over its real socket; a model that cannot load
    still fails with the predictor's own reason."""
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, "sentiment", alias=None)
    log_path = home / "step-host.log"
    host = StepHost.start(
        ["driftloop.serving.smoke", "driftloop.serving.server"], log_path=log_path
    )
    try:
        _wait_for_preload(log_path)
        monkeypatch.setenv(ENV_VAR, host.socket_path)
        result = run_step(
            "driftloop.serving.smoke:smoke_serve",
            f"models:/sentiment/{version}",
            ["great product", "awful"],
            timeout_s=120,
        )
        assert result["server_started_by"] == "fork"
        assert result["model_version"] == version
        assert [p["label"] for p in result["predictions"]] == ["positive", "negative"]
        assert not (home / "store.db").exists()
        with pytest.raises(SmokeServeError, match="cannot load"):
            run_step("driftloop.serving.smoke:smoke_serve", "models:/sentiment/99", ["x"])
    finally:
        host.stop()


def _wait_for_preload(log_path: Path, timeout_s: float = 120.0) -> None:
    """Until the host says it imported everything (a step arriving earlier runs with
    what is loaded so far, and would start a fresh Python)."""
    deadline = time.monotonic() + timeout_s
    while "step host ready" not in (log_path.read_text() if log_path.exists() else ""):
        assert time.monotonic() < deadline, "step host did not finish its imports"
        time.sleep(0.2)
