"""The monitor calls drift sustained -- what DriftDetected fires on -- only after
``consecutive_windows`` flagged windows in a row; a clean window or a new champion
starts the count again. The detectors here are scripted (the real ones are tested
in test_drift_acceptance / test_drift_in_domain); the engine, metrics and the
alert condition are the monitor's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from driftloop.monitor.config import DEFAULT_CONFIG, ConfigError, parse_config
from driftloop.monitor.detectors import DetectorResult
from driftloop.monitor.engine import DriftEngine
from driftloop.monitor.evaluator import CONDITIONS, parse_metrics
from driftloop.monitor.events import Sample
from driftloop.monitor.metrics import MonitorMetrics
from driftloop.monitor.rules import AlertThresholds
from driftloop.settings import Settings

WINDOW = 4


class ScriptedDetectors:
    """Flags the windows whose first text says "drift"."""

    def run(self, features: dict) -> list[DetectorResult]:
        drifted = bool(features["drift"][0])
        return [DetectorResult("ks-x", "ks", "x", drifted, 1.0, 0.0 if drifted else 0.5, 0.0)]


class TextFlag:
    def knows(self, output: dict) -> bool:
        return True

    def transform(self, model_input, outputs) -> dict:
        return {"drift": np.array([text == "drift" for text in model_input])}


@dataclass
class Bundle:
    featurizer: TextFlag
    detectors: ScriptedDetectors


def feed(engine: DriftEngine, flagged: bool) -> None:
    text = "drift" if flagged else "calm"
    engine.add([Sample([text], {"label": "x"}) for _ in range(WINDOW)])
    assert engine.wait_idle(10)


def state(metrics: MonitorMetrics, version: str = "1") -> tuple[float, float, bool]:
    in_a_row = metrics.drift_windows_in_a_row.labels(model="m", version=version)._value.get()
    sustained = metrics.drift_sustained.labels(model="m", version=version)._value.get()
    series = parse_metrics(metrics.render().decode())
    thresholds = AlertThresholds.from_settings(Settings.model_construct())
    return in_a_row, sustained, bool(CONDITIONS["DriftDetected"](series, thresholds))


@pytest.fixture
def engine():
    metrics = MonitorMetrics()
    engine = DriftEngine("m", metrics, window=WINDOW, consecutive_windows=2)
    engine.set_reference("1", Bundle(TextFlag(), ScriptedDetectors()))
    engine.start()
    yield engine
    engine.close()


def test_one_flagged_window_is_evidence_two_in_a_row_are_an_alarm(engine):
    m = engine.metrics
    feed(engine, True)
    assert state(m) == (1, 0, False)  # the detector's own flag is still published
    assert (
        m.drift_detected.labels(model="m", version="1", detector="ks-x", features="x")._value.get()
        == 1
    )
    feed(engine, False)
    assert state(m) == (0, 0, False)
    feed(engine, True)
    feed(engine, True)
    assert state(m) == (2, 1, True)
    feed(engine, True)
    assert state(m) == (3, 1, True)
    feed(engine, False)
    assert state(m) == (0, 0, False)


def test_a_new_reference_starts_the_count_again(engine):
    feed(engine, True)
    engine.set_reference("2", Bundle(TextFlag(), ScriptedDetectors()))
    feed(engine, True)
    assert state(engine.metrics, "2") == (1, 0, False)


def test_consecutive_windows_one_alarms_on_any_flagged_window():
    engine = DriftEngine("m", MonitorMetrics(), window=WINDOW, consecutive_windows=1)
    engine.set_reference("1", Bundle(TextFlag(), ScriptedDetectors()))
    engine.start()
    try:
        feed(engine, True)
        assert state(engine.metrics) == (1, 1, True)
    finally:
        engine.close()


def test_consecutive_windows_is_part_of_the_monitor_config():
    assert DEFAULT_CONFIG.consecutive_windows == 2
    assert parse_config({"consecutive_windows": 3}).consecutive_windows == 3
    with pytest.raises(ConfigError, match="consecutive_windows"):
        parse_config({"consecutive_windows": 0})
