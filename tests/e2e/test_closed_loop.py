"""The closed loop end to end on loopback, through ``driftloop demo BLUEPRINT --quick``.

Each demo run is a real subprocess: training pipeline (kfp.local) -> MLflow
server -> monitor + predictor + trigger -> Prometheus + Alertmanager (or the
built-in evaluator) -> retraining pipeline -> gate -> promotion -> predictor
reload. The assertions read what the run left behind in its state directory
(MLflow registry, trigger ledger) as well as its JSON report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import httpx
import pytest

from driftloop.settings import Settings
from driftloop.stack.services import alerting_binaries
from driftloop.stack.supervisor import Stack
from tests.conftest import free_ports
from tests.e2e.demo_runs import (
    DEMO_MARKS,
    DRIFTLOOP,
    DemoRun,
    assert_loop_closed,
    run_demo,
    trigger_ledger,
)

STACK_PORTS = (
    "mlflow_port",
    "predictor_port",
    "predictor_grpc_port",
    "monitor_port",
    "trigger_port",
)

pytestmark = DEMO_MARKS


@pytest.fixture(scope="module")
def prometheus_demo(tmp_path_factory) -> DemoRun:
    if alerting_binaries() is None:
        pytest.skip("prometheus / prometheus-alertmanager not installed")
    # where `make demo` puts it, relative to the directory it ran in: the console test
    # below opens `driftloop ui` there with nothing configured, as a person would
    return run_demo(tmp_path_factory.mktemp("demo") / ".driftloop" / "demo-sentiment")


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
    # Alertmanager re-sends a firing alert (same fingerprint + startsAt) every group
    # interval: whatever re-send came before the loop closed was deduplicated, never a second
    # run (a fast loop may close before the first re-send; test_trigger_alertmanager covers
    # the re-send itself)
    launched = next(d for d in decisions if d.outcome == "launched")
    repeats = [d for d in decisions if d.fingerprint == launched.fingerprint and d != launched]
    assert all(
        d.outcome == "deduplicated" and d.starts_at == launched.starts_at for d in repeats
    ), repeats
    assert "Prometheus: " in prometheus_demo.stdout and "firing" in prometheus_demo.stdout


def test_driftloop_ui_after_the_demo_shows_the_whole_loop_on_one_page(prometheus_demo, tmp_path):
    """`make demo`, then `driftloop ui`: the drift, the alert, the retraining and the new
    champion on the model's page, with the demo's stack stopped."""
    workdir = prometheus_demo.state_dir.parent.parent
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLOOP_", "MLFLOW_"))}
    env["HOME"] = str(tmp_path)  # no ~/.driftloop of the person running the tests
    console = subprocess.Popen(
        [DRIFTLOOP, "ui", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and console.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        page = httpx.get(f"{base}/models/sentiment", timeout=60)
    finally:
        console.terminate()
        said = console.communicate(timeout=15)[0]
    assert "showing the last demo" in said, said
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    # the drift: the p-values Prometheus scraped during the run, kept when the stack stopped
    assert "recorded (prometheus)" in html
    health = html[html.index('id="health"') : html.index('id="score-plot"')]
    assert " p = <b" in health and "<svg" in health  # each detector's last p-value, the plot
    # the alert the trigger received and the retraining run it launched
    decisions = html[html.index('id="decisions"') : html.index('id="model-runs"')]
    runs_table = html[html.index('id="model-runs"') : html.index('id="recent"')]
    assert "launched" in decisions
    assert any(name in decisions for name in ("DriftDetected", "LiveScoreDrop", "FeedbackBacklog"))
    assert "succeeded" in runs_table
    # the new champion, with the gate's decision
    assert "champion → v2" in html
    versions = html[html.index('id="versions"') : html.index('id="decisions"')]
    assert "promote" in versions
    assert "see the whole run in the web console: driftloop ui" in prometheus_demo.stdout


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
