"""The loop as ``driftloop up`` runs it, with real Prometheus: every Grafana panel's query
returns data after traffic, and the console and ``driftloop status`` show the drift.

A sentiment champion with a drift reference; the stack's MLflow, monitor, predictor,
trigger and Prometheus (scraping every second); in-domain traffic with feedback, then
two shifted windows (tweets) the detectors flag. Then: each dashboard query (Grafana's
variables filled as for "All") answers with series; the console's model page shows
the p-values under their threshold, the live and test scores and the firing alert;
``driftloop status --json`` reports the same per model. With chromium installed the
model page is saved as docs/screenshots/model-drift.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from driftloop.settings import Settings
from driftloop.stack.services import alerting_binaries
from driftloop.stack.supervisor import Stack
from tests.conftest import free_ports
from tests.unit.test_dashboards import dashboards, queries

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(alerting_binaries() is None, reason="prometheus is not installed"),
]
MODEL = "sentiment"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "model-drift.png"


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen in {timeout_s:.0f} s")
        time.sleep(0.5)


def prometheus_query(url: str, expr: str) -> list[dict]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


@pytest.fixture
def stack(home):
    from driftloop.monitor.reference import fit_reference
    from driftloop.registry import ModelRegistry
    from tests.integration.test_monitor_service import register
    from tests.unit.conftest_monitor import corpus, small_text_model

    names = (
        "mlflow",
        "trigger",
        "predictor",
        "predictor_grpc",
        "monitor",
        "prometheus",
        "alertmanager",
        "console",
    )
    ports = {f"{n}_port": p for n, p in zip(names, free_ports(len(names)), strict=True)}
    # one flagged window is enough for DriftDetected here (the default waits for 2 of 3)
    monitor_config = home / "monitor.yaml"
    monitor_config.write_text("alarm_flagged: 1\nalarm_of_last: 1\n")
    settings = Settings(
        home=home,
        monitor_config=monitor_config,
        monitor_window=50,
        score_min_samples=10,
        monitor_feedback_poll_s=0.5,
        reload_interval_s=1.0,
        stack_health_timeout_s=120,
        **ports,
    )
    tracking = settings.resolved_tracking_uri
    version = register(tracking, small_text_model(n_train=1500), test_score=0.8)
    ModelRegistry(tracking).promote(MODEL, version)
    reference = home / "reference.parquet"
    corpus().iloc[2000:2600][["id", "text", "label"]].to_parquet(reference)
    fit_reference(MODEL, version, reference, settings)
    stack = Stack(settings, MODEL, alerting="prometheus")
    try:
        stack.up(only=["mlflow", "monitor", "predictor", "trigger", "prometheus"])
        yield stack
    finally:
        stack.down(timeout_s=10)


def traffic(stack: Stack) -> None:
    """100 in-domain texts with their true labels as feedback, then 100 tweets (drift)."""
    from tests.unit.conftest_monitor import corpus, tweets

    in_domain = corpus().iloc[3000:3100]
    with httpx.Client(base_url=stack.url("predictor"), timeout=30) as client:
        for text, label in zip(in_domain["text"], in_domain["label"], strict=True):
            answer = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [text]})
            assert answer.status_code == 200, answer.text
            request_id = answer.headers["x-request-id"]
            feedback = client.post(f"/v1/feedback/{request_id}", json={"label": str(label)})
            assert feedback.status_code == 200, feedback.text
        for text in tweets().iloc[:100]["text"]:
            answer = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [text]})
            assert answer.status_code == 200, answer.text
    # a resolved alert is recorded and ignored: the trigger's decision counter gets a sample
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    alert = {
        "status": "resolved",
        "labels": {"alertname": "DriftDetected", "model": MODEL},
        "startsAt": now,
        "endsAt": now,
        "fingerprint": "dashboards-test",
    }
    posted = httpx.post(
        stack.trigger_webhook,
        json={"version": "4", "status": "resolved", "receiver": "driftloop", "alerts": [alert]},
        headers={"Authorization": f"Bearer {stack.trigger_token()}"},
        timeout=10,
    )
    assert posted.status_code < 300, posted.text


def test_every_panel_returns_data_and_the_console_and_the_drift_report_show_the_drift(
    stack, tmp_path
):
    traffic(stack)
    prometheus = stack.url("prometheus")
    every = queries(dashboards()["driftloop-overview.json"])

    def empty() -> list[str]:
        return [title for title, expr in every if not prometheus_query(prometheus, expr)]

    wait_for(lambda: not empty(), 120, f"data for every panel (still empty: {empty()})")
    # the shifted window is flagged: some detector's p-value is under its threshold
    from driftloop.console.config import ConsoleConfig
    from driftloop.console.history import model_history

    config = ConsoleConfig.from_settings(
        stack.settings,
        tracking_uri=stack.tracking_uri,
        prometheus_url=prometheus,
        trigger_token=stack.trigger_token(),
    )

    seen = {}

    def drifted():
        history = seen["history"] = model_history(config, MODEL, 600)
        flagged = any(p < history.thresholds[d] for d, p in history.latest_p_values.items())
        alerts = {a["name"] for a in history.alerts}
        return history if flagged and "DriftDetected" in alerts and history.latest_live else None

    # a shifted window is flagged (the monitor config calls one sustained): DriftDetected fires
    try:
        history = wait_for(drifted, 120, "flagged windows, DriftDetected and a live score")
    except AssertionError:
        last = seen["history"]
        monitor = httpx.get(f"{stack.url('monitor')}/status", timeout=10).json()
        raise AssertionError(
            (last.latest_p_values, last.thresholds, last.alerts, last.latest_live, monitor)
        ) from None
    assert history.source == "prometheus"
    assert history.latest_test == pytest.approx(0.8)
    assert {a["name"] for a in history.alerts} >= {"DriftDetected"}

    status = json.loads(driftloop(stack, "status", "--model", MODEL, "--json"))
    (health,) = [h for h in status["health"] if h["model"] == MODEL]
    assert health["source"] == "prometheus" and health["live_score"] is not None
    assert any(p < health["thresholds"][d] for d, p in health["p_values"].items())

    from fastapi.testclient import TestClient

    from driftloop.console.app import create_app

    with TestClient(create_app(config)) as client:
        page = client.get(f"/models/{MODEL}")
    assert page.status_code == 200
    assert "DriftDetected" in page.text and 'class="bad"' in page.text
    assert "resolved_ignored" in page.text  # the trigger's decision on the posted alert
    screenshot(config)

    # the drift report: 100 in-domain texts, then 100 tweets -> four windows, the last two shifted
    page = tmp_path / "drift.html"
    report = json.loads(
        driftloop(stack, "report", "drift", MODEL, "--out", str(page), "--window", "50", "--json")
    )
    assert [w["rows"] for w in report["windows"]] == [50, 50, 50, 50]
    assert [w["drift"] for w in report["windows"]][2:] == [True, True]
    assert any(m["moved"] for m in report["moved"])
    text = page.read_text()
    assert text.count("<svg") == 2 and "<script" not in text and 'class="bad"' in text


def driftloop(stack: Stack, *args: str) -> str:
    """A ``driftloop`` command run in the stack's environment (as after ``driftloop up``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    for name, value in stack.child_env().items():
        if name.startswith("DRIFTLOOP_"):
            env[name] = value
    env.pop("MLFLOW_TRACKING_URI", None)  # the stack's own backend, as `driftloop up` set it
    env["MLFLOW_TRACKING_URI"] = stack.backend_uri
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from driftloop.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def screenshot(config) -> None:
    """The console's model page with real drift, for the README (when chromium is here)."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return
    import threading

    import uvicorn

    from driftloop.console.app import create_app
    from driftloop.ports import free_port
    from tests.integration.test_console_browser import save

    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "the console")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/models/{MODEL}?hours=0.25")
        save(driver, SCREENSHOT.stem)
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)
