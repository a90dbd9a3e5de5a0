"""The closed loop end to end on loopback, through ``driftloop demo BLUEPRINT --quick``.

Each demo run is a real subprocess: training pipeline (kfp.local) -> MLflow
server -> monitor + predictor + trigger -> Prometheus + Alertmanager (or the
built-in evaluator) -> retraining pipeline -> gate -> promotion -> predictor
reload. The assertions read what the run left behind in its state directory
(MLflow registry, trigger ledger) as well as its JSON report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from driftloop.blueprints.scoring import GREATER_IS_BETTER
from driftloop.settings import Settings
from driftloop.stack.services import alerting_binaries
from driftloop.stack.supervisor import Stack
from tests.conftest import free_ports

STACK_PORTS = (
    "mlflow_port",
    "predictor_port",
    "predictor_grpc_port",
    "monitor_port",
    "trigger_port",
)

# a demo run is minutes on 2 shared cores: above the suite-wide 600 s per-test limit
pytestmark = [
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


@pytest.fixture(scope="module")
def prometheus_demo(tmp_path_factory) -> DemoRun:
    if alerting_binaries() is None:
        pytest.skip("prometheus / prometheus-alertmanager not installed")
    return run_demo(tmp_path_factory.mktemp("demo") / "prometheus")


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


def test_demo_quick_passes_as_a_subprocess(prometheus_demo):
    out = prometheus_demo.stdout
    assert prometheus_demo.returncode == 0, out[-3000:]
    for step in (
        "is champion",
        "traffic shifts to tweets",
        "launched",
        "promoted to champion",
        "predictor answers with v2",
        "loop closed",
        "drift onset -> new champion served",
    ):
        assert step in out, step
    assert not list((prometheus_demo.home / "stack").glob("*.pid")), "the stack was stopped"
    print(
        f"demo: {prometheus_demo.seconds:.0f}s in all, drift onset -> new champion served "
        f"{prometheus_demo.report['onset_to_new_champion_s']:.1f}s"
    )


def test_loop_closes_with_real_prometheus_and_alertmanager(prometheus_demo):
    assert_loop_closed(prometheus_demo, "prometheus")
    decisions, _ = trigger_ledger(prometheus_demo.home)
    # Alertmanager re-sent the firing alert (same fingerprint + startsAt): deduplicated
    launched = next(d for d in decisions if d.outcome == "launched")
    repeats = [
        d
        for d in decisions
        if d.fingerprint == launched.fingerprint and d.outcome == "deduplicated"
    ]
    assert repeats and all(d.starts_at == launched.starts_at for d in repeats)
    assert "Prometheus: " in prometheus_demo.stdout and "firing" in prometheus_demo.stdout


def test_loop_closes_with_the_builtin_evaluator(tmp_path):
    run = run_demo(tmp_path / "evaluator", "--no-prometheus")
    assert_loop_closed(run, "evaluator")
    assert not (run.home / "stack" / "prometheus.pid").exists()
    onset = run.report["onset_to_new_champion_s"]
    print(f"evaluator demo: {run.seconds:.0f}s, onset -> new champion {onset:.1f}s")


def metric(url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_monitor_crash_does_not_stop_serving_and_monitoring_resumes(prometheus_demo, monkeypatch):
    """Reuses the demo's registry (champion v2 with its drift reference)."""
    home = prometheus_demo.home
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
    monkeypatch.setenv("DRIFTLOOP_HOME", str(home))
    settings = Settings(
        home=home,
        **dict(zip(STACK_PORTS, free_ports(len(STACK_PORTS)), strict=True)),
        logger_max_retries=1,
        stack_health_timeout_s=120,
    )
    stack = Stack(settings, "sentiment", alerting="none")
    predictor, monitor = stack.url("predictor"), stack.url("monitor")
    texts = [
        "a warm, funny and moving film",
        "tedious and badly acted",
        "@user driverless cars rock",
    ]

    def predict(n: int) -> list[int]:
        codes = []
        for i in range(n):
            body = {"instances": [texts[i % len(texts)]]}
            codes.append(
                httpx.post(
                    f"{predictor}/v1/models/sentiment:predict", json=body, timeout=10
                ).status_code
            )
        return codes

    def wait_for(predicate, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.25)

    def events() -> float:
        return metric(f"{monitor}/metrics", "driftloop_events_total", model="sentiment")

    try:
        stack.up(only=["mlflow", "monitor", "predictor"])
        assert predict(10) == [200] * 10
        wait_for(lambda: events() >= 20)  # request + response per prediction

        os.killpg(stack.running_pid("monitor"), signal.SIGKILL)
        wait_for(lambda: stack.running_pid("monitor") is None)
        assert predict(30) == [200] * 30, "the predictor keeps answering without its monitor"
        logger = f"{predictor}/metrics"
        wait_for(
            lambda: (
                metric(logger, "driftloop_logger_events_total", outcome="failed")
                + metric(logger, "driftloop_logger_events_total", outcome="dropped")
                > 0
            ),
            timeout_s=60,
        )

        stack.restart("monitor")
        assert predict(10) == [200] * 10
        wait_for(lambda: events() >= 20, timeout_s=60)  # a fresh monitor counts again
    finally:
        stack.down(timeout_s=10)


# The regression loop's gate decision is noisy (the diabetes demo closed in 2 of 3 runs
# on 2026-11-30: a challenger once lost by 1.91 %); it runs on request, at 4+ minutes.
REGRESSION_DEMO = pytest.param(
    "diabetes",
    "rmse",
    marks=pytest.mark.skipif(
        os.environ.get("DRIFTLOOP_E2E_REGRESSION_DEMO") != "1",
        reason="set DRIFTLOOP_E2E_REGRESSION_DEMO=1 to run the (noisy) regression loop",
    ),
)


@pytest.mark.parametrize(("dataset", "metric"), [("penguins", "macro_f1"), REGRESSION_DEMO])
def test_tabular_demo_closes_the_loop_on_a_column_shift(tmp_path, dataset, metric):
    """A classification and a regression table: a unit change in one column is
    detected, the retrained model is promoted and served (Prometheus when installed)."""
    alerting = "prometheus" if alerting_binaries() is not None else "evaluator"
    extra = ("--dataset", dataset) + (() if alerting == "prometheus" else ("--no-prometheus",))
    run = run_demo(tmp_path / dataset, *extra, blueprint="tabular")
    assert_loop_closed(run, alerting, model=f"tabular-{dataset}")
    report = run.report
    assert report["metric"] == metric
    traffic = report["traffic"]
    assert all(traffic[phase]["live_score"] is not None for phase in ("in_domain", "shifted"))
    assert "monitor: drift detected" in run.stdout
