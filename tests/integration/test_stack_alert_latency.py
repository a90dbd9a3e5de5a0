"""How soon the embedded stack's real Prometheus + Alertmanager tell the trigger.

A real monitor service serves /metrics on loopback, the stack starts Prometheus
and Alertmanager with the configs it generates, and a loopback receiver stands
where the trigger's webhook would be. The webhook must follow the monitor's
verdict by the rule's ``for`` plus at most one monitor scrape, one rule
evaluation and a little slack -- no Alertmanager group wait on top.
"""

from __future__ import annotations

import time

import httpx
import pytest

from driftloop.monitor.rules import parse_duration
from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from driftloop.stack.services import LOCAL_ALERT_FOR, alerting_binaries
from driftloop.stack.supervisor import Stack
from tests.integration.conftest_monitor import serving, wait_for
from tests.integration.test_evaluator import Receiver
from tests.integration.test_stack import stack_settings
from tests.integration.test_stack_evaluator import port_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(alerting_binaries() is None, reason="prometheus/alertmanager not installed"),
]

# What the path may add to the `for`: one 500 ms monitor scrape, one 500 ms rule
# evaluation, 0.5 s for HTTP round trips and timers on a busy machine -- and no group
# wait. With 1 s scrapes and evaluations and a 1 s group wait it took ~4 s (`for` + 2).
AFTER_FOR_S = 1.5


def scraped_healthy(stack: Stack) -> bool:
    """Prometheus holds the monitor's drift verdict, and it says no drift."""
    try:
        response = httpx.get(
            f"{stack.url('prometheus')}/api/v1/query",
            params={"query": 'driftloop_drift_sustained{model="sentiment"}'},
            timeout=5,
        )
        result = response.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return bool(result) and all(float(series["value"][1]) == 0 for series in result)


def test_prometheus_alert_reaches_the_trigger_within_for_plus_one_scrape_and_evaluation(home):
    monitor = MonitorService("sentiment", Settings(home=home), watch=False)
    drift = monitor.metrics.drift_sustained.labels(model="sentiment", version="3")
    drift.set(0)
    with serving(monitor) as monitor_url, Receiver() as receiver:
        settings = stack_settings(
            home, monitor_port=port_of(monitor_url), trigger_port=port_of(receiver.url)
        )
        stack = Stack(settings, "sentiment", alerting="prometheus")
        try:
            stack.up(only=["alertmanager", "prometheus"])
            # Prometheus applies new scrape targets up to 5 s after it starts: time the
            # alert path from a state it has scraped, as in a stack that runs for a while
            wait_for(lambda: scraped_healthy(stack), 60, "Prometheus scraping the monitor")
            assert receiver.attempts == 0  # nothing is wrong yet
            drift.set(1)
            drifted_at = time.monotonic()
            while not receiver.received and time.monotonic() - drifted_at < 30:
                time.sleep(0.01)
            waited = time.monotonic() - drifted_at
        finally:
            stack.down(timeout_s=10)
    assert receiver.received, "no webhook within 30 s of the drift"
    fired = receiver.received[0]
    assert fired["auth"] == f"Bearer {stack.trigger_token()}"
    assert fired["body"]["status"] == "firing"
    assert fired["body"]["alerts"][0]["labels"]["alertname"] == "DriftDetected"
    budget = parse_duration(LOCAL_ALERT_FOR) + AFTER_FOR_S
    print(f"\nwebhook {waited:.2f}s after the drift (for {LOCAL_ALERT_FOR}, budget {budget}s)")
    assert parse_duration(LOCAL_ALERT_FOR) <= waited <= budget
