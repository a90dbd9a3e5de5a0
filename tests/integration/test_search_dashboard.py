"""A search's stored study opens in optuna-dashboard: the server starts on loopback
against the storage URL the run is tagged with, and its API lists the study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from driftloop.lineage import TAG_OPTUNA_STORAGE, TAG_OPTUNA_STUDIES
from driftloop.ports import free_port
from driftloop.training.candidates import train_candidates
from tests.unit.search_fixtures import SmallTable, small_table, train_val

pytestmark = [pytest.mark.slow, pytest.mark.integration]

STARTUP_S = 60.0


def _dashboard() -> list[str]:
    """The dashboard installed next to this interpreter (the project's environment)."""
    found = Path(sys.executable).with_name("optuna-dashboard")
    if not found.exists():
        pytest.fail("optuna-dashboard is not installed (it is a project dependency)")
    return [str(found)]


def test_optuna_dashboard_lists_the_study_of_a_search(tmp_path, monkeypatch):
    from driftloop.settings import Settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("DRIFTLOOP_OPTUNA_STORAGE", raising=False)
    settings = Settings(home=tmp_path)
    train, val = train_val(small_table(160))
    result = train_candidates(
        SmallTable(),
        train,
        val,
        experiment="dashboard",
        settings=settings,
        search={"trials": 3, "candidates": ["sgd"], "validation": "holdout"},
    )
    tags = mlflow.MlflowClient().get_run(result.run_id).data.tags
    storage, study = tags[TAG_OPTUNA_STORAGE], tags[TAG_OPTUNA_STUDIES]

    port = free_port()
    log = (tmp_path / "dashboard.log").open("w")
    server = subprocess.Popen(
        [*_dashboard(), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        listed, deadline = None, time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    listed = json.load(r)
                break
            except OSError:
                time.sleep(0.5)
        assert listed is not None, (tmp_path / "dashboard.log").read_text()[-2000:]
        summaries = listed["study_summaries"]
        assert [s["study_name"] for s in summaries] == [study]
        assert summaries[0]["directions"] == ["maximize"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
