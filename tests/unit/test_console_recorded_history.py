"""What the console shows once the stack is stopped: the history kept under the home, and
which home `driftloop ui` opens when nothing is configured (the last demo's)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.cli.ui import WHERE_VARIABLES, last_demo_home, shown_home, ui
from driftloop.console.config import ConsoleConfig
from driftloop.console.history import (
    ModelHistory,
    Series,
    model_history,
    recorded_path,
)
from driftloop.demo.state import HOME, MARKER, demo_homes
from driftloop.settings import Settings
from tests.conftest import free_ports


def _unreachable_config(home: Path) -> ConsoleConfig:
    prometheus, monitor, trigger = free_ports(3)  # nothing listens there
    return ConsoleConfig.from_settings(
        Settings(home=home),
        prometheus_url=f"http://127.0.0.1:{prometheus}",
        monitor_url=f"http://127.0.0.1:{monitor}",
        trigger_url=f"http://127.0.0.1:{trigger}",
    )


def _history() -> ModelHistory:
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
    drift = Series("text_length")
    live = Series("live score")
    for i in range(5):
        drift.add(datetime.fromtimestamp(start + 10 * i, UTC), 0.5 / (i + 1) ** 4)
        live.add(datetime.fromtimestamp(start + 10 * i, UTC), 0.9 - 0.05 * i)
    live.add(datetime.fromtimestamp(start + 60, UTC), float("nan"))  # not kept
    return ModelHistory(
        "prometheus",
        drift=[drift],
        thresholds={"text_length": 0.01},
        live=live,
        test=None,
        greater_is_better=True,
        alerts=[{"name": "DriftDetected", "state": "firing", "since": "", "summary": "s"}],
    )


def test_a_history_survives_its_json_form():
    history = _history()
    again = ModelHistory.from_json(json.loads(json.dumps(history.to_json())))
    assert again.to_json() == history.to_json()
    assert again.latest_p_values == history.latest_p_values
    assert again.latest_live == pytest.approx(0.7) and again.test is None


def test_with_the_stack_stopped_the_console_shows_the_kept_history(tmp_path):
    config = _unreachable_config(tmp_path)
    assert model_history(config, "sentiment").source == "none"  # nothing kept yet
    path = recorded_path(tmp_path, "sentiment")
    path.parent.mkdir(parents=True)
    record = {"model": "sentiment", "recorded_at": "2026-11-30T12:05:00+00:00"}
    path.write_text(json.dumps({**record, **_history().to_json()}))
    history = model_history(config, "sentiment", seconds=60)  # older than 60 s: shown whole
    assert history.source == "recorded (prometheus)"
    assert "not reachable" in history.note and "2026-11-30T12:05:00" in history.note
    assert history.latest_p_values == _history().latest_p_values
    assert model_history(config, "other").source == "none"  # kept per model


def test_a_damaged_recording_is_named_not_raised(tmp_path):
    config = _unreachable_config(tmp_path)
    path = recorded_path(tmp_path, "a/b")
    assert path.parent == tmp_path / "history"  # a name cannot climb out of the folder
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    history = model_history(config, "a/b")
    assert history.source == "none" and "unreadable" in history.note


def _demo(root: Path, name: str) -> Path:
    home = root / ".driftloop" / f"demo-{name}" / HOME
    home.mkdir(parents=True)
    (home.parent / MARKER).write_text("x")
    (home / "mlflow.db").write_bytes(b"")
    return home


@pytest.fixture
def nothing_configured(monkeypatch, tmp_path):
    for name in WHERE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Settings(home=tmp_path / "own-home")


def test_ui_opens_the_last_demo_when_nothing_is_configured(nothing_configured, tmp_path):
    older = _demo(tmp_path, "tabular")
    newer = _demo(tmp_path, "sentiment")
    os.utime(older / "mlflow.db", (time.time() - 100, time.time() - 100))
    (tmp_path / ".driftloop" / "demo-stray").mkdir()  # no marker: not a demo
    assert demo_homes() == [
        Path(".driftloop/demo-sentiment") / HOME,
        Path(".driftloop/demo-tabular") / HOME,
    ]
    assert last_demo_home(nothing_configured) == newer.resolve()


def test_ui_keeps_a_newer_own_registry_or_a_named_one(nothing_configured, tmp_path, monkeypatch):
    demo = _demo(tmp_path, "sentiment")
    os.utime(demo / "mlflow.db", (time.time() - 100, time.time() - 100))
    nothing_configured.home.mkdir()
    (nothing_configured.home / "mlflow.db").write_bytes(b"")
    assert last_demo_home(nothing_configured) is None  # the user's own loop is newer
    (nothing_configured.home / "mlflow.db").unlink()
    assert last_demo_home(nothing_configured) == demo.resolve()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert last_demo_home(nothing_configured) is None  # the user said where the models are


def test_a_shown_home_reads_its_own_registry_unless_one_is_named(
    nothing_configured, tmp_path, monkeypatch
):
    demo = _demo(tmp_path, "sentiment")
    shown = shown_home(nothing_configured, demo)
    assert shown.home == demo.resolve()
    assert shown.resolved_tracking_uri == f"sqlite:///{demo.resolve() / 'mlflow.db'}"
    assert shown.resolved_store_url == f"sqlite:///{demo.resolve() / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert shown_home(nothing_configured, demo).resolved_tracking_uri == "http://127.0.0.1:5000"


def test_ui_names_a_missing_home(tmp_path):
    result = CliRunner().invoke(ui, ["--home", str(tmp_path / "nowhere")])
    assert (
        result.exit_code != 0 and "--home" in result.output and "no such directory" in result.output
    )
