"""The stack's built-in evaluator is `driftloop monitor --evaluate-alerts --alert-for`, for real.

A real monitor service serves /metrics on loopback, the stack starts the
evaluator as its own process through the public CLI, and a loopback receiver
stands where the trigger's webhook would be.
"""

from __future__ import annotations

import json
import time

import click
import pytest

from driftloop.monitor.rules import parse_duration
from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from driftloop.stack.services import LOCAL_ALERT_FOR
from driftloop.stack.supervisor import Stack
from tests.integration.conftest_monitor import serving, wait_for
from tests.integration.test_evaluator import Receiver
from tests.integration.test_stack import stack_settings

pytestmark = pytest.mark.integration


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def test_the_evaluator_service_is_the_cli_with_the_local_alert_for(home):
    from driftloop.cli import cli

    stack = Stack(stack_settings(home), "sentiment", alerting="evaluator")
    service = next(s for s in stack.services() if s.name == "evaluator")
    args = service.argv[service.argv.index("monitor") + 1 :]
    context = cli.get_command(click.Context(cli), "monitor").make_context("monitor", args)
    assert context.params["evaluate_alerts"] is True
    assert context.params["alert_for"] == LOCAL_ALERT_FOR
    assert (context.params["host"], context.params["port"]) == (
        "127.0.0.1",
        stack.settings.monitor_port,
    )


def test_the_stack_evaluator_fires_after_the_alert_for_and_stops_on_down(home):
    monitor = MonitorService("sentiment", Settings(home=home), watch=False)
    # the monitor's verdict DriftDetected fires on: flagged windows in a row
    drift = monitor.metrics.drift_sustained.labels(model="sentiment", version="3")
    drift.set(0)
    with serving(monitor) as monitor_url, Receiver() as receiver:
        settings = stack_settings(
            home,
            monitor_port=port_of(monitor_url),
            trigger_port=port_of(receiver.url),
            evaluator_interval_s=0.25,
        )
        stack = Stack(settings, "sentiment", alerting="evaluator")
        try:
            stack.up(only=["evaluator"])
            record = json.loads(stack.pid_file("evaluator").read_text())
            assert "--evaluate-alerts" in record["argv"]
            time.sleep(1.0)
            assert receiver.attempts == 0  # nothing is wrong yet
            drift.set(1)
            drifted_at = time.monotonic()
            wait_for(lambda: receiver.received, 30, "the DriftDetected webhook")
            waited = time.monotonic() - drifted_at
        finally:
            stopped = stack.down(timeout_s=10)
    print(f"\nwebhook {waited:.2f}s after the drift (alert-for {LOCAL_ALERT_FOR})")
    assert waited >= parse_duration(LOCAL_ALERT_FOR)
    fired = receiver.received[0]
    assert fired["auth"] == f"Bearer {stack.trigger_token()}"
    assert fired["body"]["status"] == "firing"
    assert fired["body"]["alerts"][0]["labels"]["alertname"] == "DriftDetected"
    assert stopped == ["evaluator"]
    assert stack.running_pid("evaluator") is None
