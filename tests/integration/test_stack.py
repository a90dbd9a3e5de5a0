"""The local stack supervisor with real processes on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from driftloop.settings import Settings
from driftloop.stack import alerting_config
from driftloop.stack.services import (
    LOCAL_GROUP_WAIT,
    LOCAL_MONITOR_SCRAPE,
    LOCAL_RULE_EVALUATION,
    Service,
    StackError,
    alerting_binaries,
)
from driftloop.stack.supervisor import Stack, process_start_ticks
from tests.conftest import free_ports

pytestmark = [pytest.mark.integration]


def stack_settings(home: Path, **overrides) -> Settings:
    names = (
        "mlflow_port",
        "trigger_port",
        "predictor_port",
        "predictor_grpc_port",
        "monitor_port",
        "prometheus_port",
        "alertmanager_port",
    )
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    return Settings(home=home, stack_health_timeout_s=90, **{**ports, **overrides})


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_lines(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


@pytest.mark.slow
def test_up_status_restart_down(home):
    settings = stack_settings(home)
    said: list[str] = []
    stack = Stack(settings, "sentiment", alerting="none", say=said.append)
    stop = threading.Event()
    try:
        stack.up(only=["mlflow", "trigger"])
        # nothing to serve yet: predictor and monitor are skipped with a hint, not crashed
        stack.up(only=["monitor", "predictor"])
        assert any("no champion for 'sentiment'" in line for line in said)
        assert stack.running_pid("predictor") is None and stack.running_pid("monitor") is None
        states = {s.name: s for s in stack.status()}
        assert states["mlflow"].healthy and states["trigger"].healthy
        assert not states["predictor"].running  # not asked for
        for name in ("mlflow", "trigger"):
            assert stack.pid_file(name).is_file() and stack.log_file(name).is_file()
        # MLflow's server-side job runner (8 processes) is not started: nothing submits jobs
        mlflow_tree = " ".join(command_lines(descendants(stack.running_pid("mlflow"))))
        assert "uvicorn" in mlflow_tree and "jobs._job_runner" not in mlflow_tree, mlflow_tree
        # the generated token reached the trigger: it refuses reads without it
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
        env.update(
            DRIFTLOOP_HOME=str(home),
            DRIFTLOOP_MLFLOW_PORT=str(settings.mlflow_port),
            DRIFTLOOP_TRIGGER_PORT=str(settings.trigger_port),
            DRIFTLOOP_PREDICTOR_PORT=str(settings.predictor_port),
            DRIFTLOOP_MONITOR_PORT=str(settings.monitor_port),
        )
        report = subprocess.run(
            [str(Path(sys.executable).parent / "driftloop"), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=True,
        )
        status = json.loads(report.stdout)
        processes = {p["name"]: p for p in status["processes"]}
        assert processes["trigger"]["healthy"] and processes["mlflow"]["healthy"]
        assert status["champion"]["version"] is None
        assert status["decisions"] == [] and status["runs"] == [] and "trigger_error" not in status

        # a crashed process is restarted by the supervisor
        supervisor = threading.Thread(target=stack.supervise, args=(stop, 0.5), daemon=True)
        supervisor.start()
        old_pid = stack.running_pid("trigger")
        os.killpg(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = {s.name: s for s in stack.status()}["trigger"]
            if state.healthy and state.pid != old_pid:
                break
            time.sleep(0.5)
        assert state.healthy and state.pid != old_pid and state.restarts == 1
    finally:
        stop.set()
        time.sleep(0.6)  # let the supervisor see the stop before processes go away
        stopped = stack.down(timeout_s=10)
    assert set(stopped) == {"mlflow", "trigger"}
    assert not list(stack.dir.glob("*.pid"))
    assert all(process_start_ticks(pid) is None for pid in (old_pid, state.pid))


def test_a_taken_port_is_a_clear_error(home):
    settings = stack_settings(home)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.trigger_port))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {settings.trigger_port} for trigger is taken"):
            Stack(settings, alerting="none").up(only=["trigger"])
    assert not list((home / "stack").glob("*.pid"))


def test_a_process_that_dies_at_start_is_reported_with_its_log(home):
    stack = Stack(stack_settings(home), alerting="none")
    crashing = Service(
        "trigger",
        [sys.executable, "-c", "import sys; print('cannot bind: boom', flush=True); sys.exit(3)"],
        port=None,
        health_url="http://127.0.0.1:9/healthz",
    )
    stack.start(crashing)
    with pytest.raises(StackError, match="trigger exited during start-up") as error:
        stack.wait_healthy(crashing, timeout_s=30)
    assert "cannot bind: boom" in str(error.value)
    stack.down()
    assert not stack.pid_file("trigger").exists()


def test_a_port_out_of_range_is_refused(home):
    with pytest.raises(StackError, match="trigger_port=70000"):
        Stack(stack_settings(home, trigger_port=70000), alerting="none").up(only=["trigger"])


@pytest.mark.skipif(alerting_binaries() is None, reason="prometheus/alertmanager not installed")
def test_generated_configs_pass_promtool_and_amtool(home):
    settings = stack_settings(home)
    stack = Stack(settings, alerting="prometheus")
    try:
        alerting_config.read_rules()
    except (FileNotFoundError, ModuleNotFoundError):
        pytest.skip("driftloop.monitor alert_rules.yaml not built yet")
    stack.write_alerting_configs({"alertmanager", "prometheus"})
    rules = alerting_config.read_rules(stack.dir / "alert_rules.yaml")
    assert all(group["interval"] == LOCAL_RULE_EVALUATION for group in rules["groups"])
    prometheus = yaml.safe_load((stack.dir / "prometheus.yml").read_text())
    assert prometheus["global"]["evaluation_interval"] == LOCAL_RULE_EVALUATION
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["driftloop-monitor"]["scrape_interval"] == LOCAL_MONITOR_SCRAPE
    assert "scrape_interval" not in jobs["driftloop-predictor"]  # the global 1s
    alertmanager = yaml.safe_load((stack.dir / "alertmanager.yml").read_text())
    assert alertmanager["route"]["group_wait"] == LOCAL_GROUP_WAIT
    names = {rule.get("alert") for group in rules["groups"] for rule in group["rules"]}
    assert {"DriftDetected", "FeedbackBacklog", "LiveScoreDrop"} <= names
    for command in (
        ["promtool", "check", "config", str(stack.dir / "prometheus.yml")],
        ["amtool", "check-config", str(stack.dir / "alertmanager.yml")],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_local_rules_only_shrink_timing():
    rules = {
        "groups": [
            {
                "name": "driftloop",
                "interval": "30s",
                "rules": [
                    {"alert": "DriftDetected", "expr": "driftloop_drift_detected > 0", "for": "5m"},
                    {"alert": "Quick", "expr": "up == 0", "for": "1s"},
                    {"record": "x", "expr": "sum(up)"},
                ],
            }
        ]
    }
    local = alerting_config.local_rules(rules, evaluation_interval="1s", max_for="2s")
    group = local["groups"][0]
    assert group["interval"] == "1s"
    assert [r.get("for") for r in group["rules"]] == ["2s", "1s", None]
    assert group["rules"][0]["expr"] == "driftloop_drift_detected > 0"
    assert rules["groups"][0]["rules"][0]["for"] == "5m", "input left untouched"


def test_a_job_scrape_interval_must_name_a_target_and_be_a_duration(tmp_path):
    targets = {"driftloop-monitor": "127.0.0.1:1"}
    config = alerting_config.prometheus_config(
        targets,
        rules_path=tmp_path / "rules.yaml",
        alertmanager=None,
        job_scrape_intervals={"driftloop-monitor": "250ms"},
    )
    (job,) = config["scrape_configs"]
    assert (job["scrape_interval"], job["scrape_timeout"]) == ("250ms", "250ms")
    with pytest.raises(ValueError, match="no target for job.*driftloop-trigger"):
        alerting_config.prometheus_config(
            targets,
            rules_path=tmp_path / "rules.yaml",
            alertmanager=None,
            job_scrape_intervals={"driftloop-trigger": "1s"},
        )
    with pytest.raises(ValueError, match="not a Prometheus duration: 'half a second'"):
        alerting_config.prometheus_config(
            targets,
            rules_path=tmp_path / "rules.yaml",
            alertmanager=None,
            job_scrape_intervals={"driftloop-monitor": "half a second"},
        )
