"""The monitor calls drift sustained -- what DriftDetected fires on -- only once
``alarm_flagged`` of the last ``alarm_of_last`` windows were flagged (2 of 3 by
default); a lone flagged window is evidence, not an alarm, and a new champion starts
gathering evidence afresh. The detectors here are scripted (the real ones are tested
in test_drift_acceptance / test_drift_in_domain); the engine, metrics and the alert
condition are the monitor's own.
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
    flagged = metrics.drift_flagged_windows.labels(model="m", version=version)._value.get()
    sustained = metrics.drift_sustained.labels(model="m", version=version)._value.get()
    series = parse_metrics(metrics.render().decode())
    thresholds = AlertThresholds.from_settings(Settings.model_construct())
    return flagged, sustained, bool(CONDITIONS["DriftDetected"](series, thresholds))


def started(flagged: int = 2, of_last: int = 3) -> DriftEngine:
    engine = DriftEngine(
        "m", MonitorMetrics(), window=WINDOW, alarm_flagged=flagged, alarm_of_last=of_last
    )
    engine.set_reference("1", Bundle(TextFlag(), ScriptedDetectors()))
    engine.start()
    return engine


@pytest.fixture
def engine():
    engine = started()
    yield engine
    engine.close()


def test_a_lone_flagged_window_is_evidence_two_of_three_are_an_alarm(engine):
    m = engine.metrics
    feed(engine, True)
    assert state(m) == (1, 0, False)  # the detector's own flag is still published
    flag = m.drift_detected.labels(model="m", version="1", detector="ks-x", features="x")
    assert flag._value.get() == 1
    for _ in range(3):
        feed(engine, False)
    assert state(m) == (0, 0, False)  # the lone flag has left the last three windows
    feed(engine, True)
    feed(engine, False)
    assert state(m) == (1, 0, False)
    feed(engine, True)  # a weak shift: flagged, clean, flagged
    assert state(m) == (2, 1, True)
    feed(engine, True)
    assert state(m) == (2, 1, True)
    feed(engine, False)
    feed(engine, False)
    assert state(m) == (1, 0, False)  # one flag left among the last three: cleared


def test_a_strong_shift_alarms_at_its_second_window(engine):
    feed(engine, True)
    feed(engine, True)
    assert state(engine.metrics) == (2, 1, True)


def test_a_new_reference_starts_the_count_again(engine):
    feed(engine, True)
    engine.set_reference("2", Bundle(TextFlag(), ScriptedDetectors()))
    feed(engine, True)
    assert state(engine.metrics, "2") == (1, 0, False)


def test_one_of_one_alarms_on_any_flagged_window():
    engine = started(1, 1)
    try:
        feed(engine, True)
        assert state(engine.metrics) == (1, 1, True)
        feed(engine, False)
        assert state(engine.metrics) == (0, 0, False)
    finally:
        engine.close()


def test_the_alarm_rule_is_part_of_the_monitor_config():
    assert (DEFAULT_CONFIG.alarm_flagged, DEFAULT_CONFIG.alarm_of_last) == (2, 3)
    config = parse_config({"alarm_flagged": 3, "alarm_of_last": 5})
    assert (config.alarm_flagged, config.alarm_of_last) == (3, 5)
    with pytest.raises(ConfigError, match="alarm_flagged"):
        parse_config({"alarm_flagged": 0})
    with pytest.raises(ConfigError, match="cannot exceed alarm_of_last"):
        parse_config({"alarm_flagged": 4, "alarm_of_last": 3})
    with pytest.raises(ValueError, match="alarm_flagged"):
        DriftEngine("m", MonitorMetrics(), window=WINDOW, alarm_flagged=3, alarm_of_last=2)
