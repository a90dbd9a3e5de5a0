"""The warm step host: a step's work runs in a forked child with the caller's environment,
working directory and output, and its value or exception comes back to the caller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from driftloop.step_host import ENV_VAR, StepHost, StepHostError, run_step

TARGETS = """
import os, sys, time
from pathlib import Path

import preloaded_marker  # noqa: F401 -- imported by the host before any step

class FieldError(ValueError):
    pass

def describe(x, y=0):
    print("step stdout", flush=True)
    print("step stderr", file=sys.stderr, flush=True)
    return {
        "sum": x + y,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "flavour": os.environ.get("STEP_FLAVOUR"),
        "marker_imported_at": sys.modules["preloaded_marker"].IMPORTED_AT,
    }

def fail(field):
    raise FieldError(f"bad value for {field!r}")

def unpicklable():
    return lambda: None

class TwoPartError(Exception):
    def __init__(self, field, why):
        super().__init__(f"{field}: {why}")

def fail_oddly():
    raise TwoPartError("--window", "must be positive")

def wait_forever(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(120)
"""


@pytest.fixture
def targets(tmp_path, monkeypatch) -> Path:
    """Importable modules for the host and this process: the step functions and a marker
    whose import time shows whether the host (not the child) imported it."""
    (tmp_path / "step_targets.py").write_text(TARGETS)
    (tmp_path / "preloaded_marker.py").write_text("import time\nIMPORTED_AT = time.time()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def host(targets, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(targets)}
    started = StepHost.start(["preloaded_marker", "step_targets"], env=env)
    monkeypatch.setenv(ENV_VAR, started.socket_path)
    yield started
    started.stop()
    assert not started.alive()
    assert not Path(started.socket_path).exists()


def test_without_a_host_the_step_runs_in_this_process(targets, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert run_step("step_targets:describe", 2, y=3)["pid"] == os.getpid()


def test_an_unreachable_host_falls_back_to_this_process(targets, monkeypatch, tmp_path, capfd):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone.sock"))
    assert run_step("step_targets:describe", 1)["pid"] == os.getpid()
    assert "not reachable" in capfd.readouterr().out


def test_a_step_runs_in_a_child_with_the_callers_environment_and_output(
    host, tmp_path, monkeypatch, capfd
):
    time.sleep(0.5)  # let the host import the marker before the step arrives
    monkeypatch.setenv("STEP_FLAVOUR", "set after the host started")
    monkeypatch.chdir(tmp_path)
    before = time.time()
    answer = run_step("step_targets:describe", 2, y=3)
    assert answer["sum"] == 5
    assert answer["pid"] not in (os.getpid(), host.process.pid)
    assert answer["cwd"] == str(tmp_path)
    assert answer["flavour"] == "set after the host started"
    # imported once, by the host, before this step: the child inherited it
    assert answer["marker_imported_at"] < before
    captured = capfd.readouterr()
    assert "step stdout" in captured.out
    assert "step stderr" in captured.err


def test_a_failing_step_raises_its_own_exception_here(host):
    with pytest.raises(ValueError, match="bad value for 'threshold'") as raised:
        run_step("step_targets:fail", "threshold")
    assert type(raised.value).__name__ == "FieldError"
    assert any("step host's child" in note for note in raised.value.__notes__)


def test_a_value_that_does_not_pickle_fails_the_step_with_a_reason(host):
    with pytest.raises(StepHostError, match="does not pickle"):
        run_step("step_targets:unpicklable")


def test_a_step_stops_when_its_caller_goes_away(host, targets, tmp_path):
    """A stopped run kills the task process; the host's child must not run on."""
    pid_file = tmp_path / "child.pid"
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from driftloop.step_host import run_step
                run_step("step_targets:wait_forever", {str(pid_file)!r})
                """
            ),
        ],
        env={**os.environ, "PYTHONPATH": str(targets), ENV_VAR: host.socket_path},
    )
    deadline = time.time() + 30
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.time() < deadline, "the step never started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    caller.send_signal(signal.SIGKILL)
    caller.wait(timeout=10)
    deadline = time.time() + 15
    while _running(child):
        assert time.time() < deadline, "the step's child outlived its caller"
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_an_exception_that_does_not_unpickle_still_reaches_the_caller_as_text(host):
    with pytest.raises(StepHostError, match="--window: must be positive"):
        run_step("step_targets:fail_oddly")
