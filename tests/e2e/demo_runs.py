"""Running ``driftloop demo BLUEPRINT --quick`` as a subprocess and reading what it left.

Each demo run is a real subprocess: training pipeline (kfp.local) -> MLflow
server -> monitor + predictor + trigger -> Prometheus + Alertmanager (or the
built-in evaluator) -> retraining pipeline -> gate -> promotion -> predictor
reload. The assertions read what the run left behind in its state directory
(MLflow registry, trigger ledger) as well as its JSON report. One module per
demo, so pytest-xdist can run two demos at once (they mostly wait on the loop).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftloop.blueprints.scoring import GREATER_IS_BETTER

# a demo run is minutes on 2 shared cores: above the suite-wide 600 s per-test limit
DEMO_MARKS = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.timeout(1200),
]

DRIFTLOOP = str(Path(sys.executable).parent / "driftloop")


@dataclass
class DemoRun:
    returncode: int
    stdout: str
    report: dict
    state_dir: Path
    seconds: float

    @property
    def home(self) -> Path:
        return self.state_dir / "home"


def run_demo(
    state_dir: Path, *extra: str, blueprint: str = "sentiment", timeout_s: float = 900
) -> DemoRun:
    report_path = state_dir.parent / f"{state_dir.name}-report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "MLFLOW_"))}
    started = time.monotonic()
    result = subprocess.run(
        [
            DRIFTLOOP,
            "demo",
            blueprint,
            "--quick",
            "--state-dir",
            str(state_dir),
            "--report",
            str(report_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
    )
    seconds = time.monotonic() - started
    print(result.stdout[-6000:], result.stderr[-3000:], sep="\n")
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return DemoRun(result.returncode, result.stdout, report, state_dir, seconds)


def registry_view(home: Path, name: str = "sentiment") -> dict:
    """Versions, tags and aliases straight from the demo's MLflow database."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    versions = {}
    for found in client.search_model_versions(f"name='{name}'"):
        version = client.get_model_version(name, found.version)
        versions[str(version.version)] = dict(version.tags)
    aliases = client.get_registered_model(name).aliases
    return {"versions": versions, "aliases": {k: str(v) for k, v in aliases.items()}}


def trigger_ledger(home: Path):
    from driftloop.trigger.ledger import Ledger

    ledger = Ledger.at_home(home)
    try:
        return ledger.decisions(limit=1000), ledger.runs(limit=100)
    finally:
        ledger.dispose()


def assert_loop_closed(run: DemoRun, alerting: str, model: str = "sentiment") -> None:
    assert run.returncode == 0, run.stdout[-3000:]
    report = run.report
    assert report["closed"] and report["alerting"] == alerting
    # alert fired -> exactly one run launched, however often the alert was re-sent
    decisions, runs = trigger_ledger(run.home)
    launched = [d for d in decisions if d.outcome == "launched"]
    assert len(launched) == 1 and len(runs) == 1
    assert runs[0].state == "succeeded" and runs[0].run_id == launched[0].run_id
    assert launched[0].alert_status == "firing" and launched[0].fingerprint
    assert launched[0].alertname in {"DriftDetected", "FeedbackBacklog", "LiveScoreDrop"}
    # a new version was registered, gated and promoted; v1 became previous-champion
    registry = registry_view(run.home, model)
    assert set(registry["versions"]) == {"1", "2"}
    assert registry["aliases"]["champion"] == "2"
    assert registry["aliases"]["previous-champion"] == "1"
    tags = registry["versions"]["2"]
    assert tags["driftloop.decision"] == "promote" and tags["driftloop.decision.reason"]
    challenger, champion = (float(tags[f"driftloop.{k}_score"]) for k in ("challenger", "champion"))
    lower_is_better = not GREATER_IS_BETTER[tags["driftloop.metric.name"]]
    assert (challenger < champion) if lower_is_better else (challenger > champion)
    # the predictor answered with the promoted version
    assert report["champion_before"] == "1" and report["champion_after"] == "2"
    assert report["traffic"]["after"]["versions"].get("2", 0) >= 10
    assert report["onset_to_new_champion_s"] > 0
