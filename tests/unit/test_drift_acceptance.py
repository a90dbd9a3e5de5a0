"""Acceptance: the default detectors' false-alarm rate and detection delay.

Bounds (documented in docs/monitoring.md), with the default detector config
and window (200 events), a sentiment-blueprint champion trained on
"sentiment-offline" and a reference of 1,200 held-out rows:

* unshifted replay (held-out in-domain texts, 40 disjoint windows): at most
  5 % of windows raise any detector (family-wise p_val 0.01);
* domain shift ("sentiment-tweets" texts): detected in the first window;
* label-prior shift (in-domain texts, 90 % negative instead of ~42 %):
  detected within 2 windows.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from driftloop.monitor.config import DEFAULT_CONFIG
from driftloop.monitor.reference import build_reference
from driftloop.settings import Settings
from tests.unit.conftest_monitor import corpus, tweets

pytestmark = pytest.mark.slow

MAX_FALSE_ALARM_RATE = 0.05
UNSHIFTED_WINDOWS = 40
DOMAIN_SHIFT_MAX_DELAY = 1
PRIOR_SHIFT_MAX_DELAY = 2
SEED = 42


@pytest.fixture(scope="module")
def setup():
    from driftloop.blueprints import get_blueprint

    frame = corpus()
    train, reference, replay = frame.iloc[:3000], frame.iloc[3000:4200], frame.iloc[4200:]
    model = get_blueprint("sentiment").candidates(SEED)["logreg"]
    model.fit(train["text"].tolist(), train["label"].tolist())
    blueprint = get_blueprint("sentiment")
    bundle = build_reference(blueprint, model, reference, config=DEFAULT_CONFIG, seed=SEED)
    window = DEFAULT_CONFIG.window_size(Settings.model_construct())
    return model, bundle, replay, window


def run_window(model, bundle, texts: list[str]) -> dict[str, bool]:
    outputs = [{"label": str(label)} for label in model.predict(texts)]
    results = bundle.detectors.run(bundle.featurizer.transform(texts, outputs))
    return {r.name: r.detected for r in results}


def first_detection(model, bundle, windows: list[list[str]]) -> int | None:
    for index, texts in enumerate(windows, start=1):
        if any(run_window(model, bundle, texts).values()):
            return index
    return None


def test_false_alarm_rate_on_unshifted_replay(setup):
    model, bundle, replay, window = setup
    assert len(replay) >= UNSHIFTED_WINDOWS * window
    texts = replay["text"].tolist()
    started = time.perf_counter()
    alarms = [
        run_window(model, bundle, texts[i * window : (i + 1) * window])
        for i in range(UNSHIFTED_WINDOWS)
    ]
    per_window = (time.perf_counter() - started) / UNSHIFTED_WINDOWS
    any_alarm = np.mean([any(a.values()) for a in alarms])
    per_detector = {name: np.mean([a[name] for a in alarms]) for name in alarms[0]}
    print(f"\nfalse-alarm rate per window: any={any_alarm:.3f} per detector={per_detector}")
    print(f"predict + featurise + test one window of {window}: {per_window:.2f} s")
    assert any_alarm <= MAX_FALSE_ALARM_RATE


def test_domain_shift_is_detected_at_once(setup):
    model, bundle, _, window = setup
    texts = tweets()["text"].tolist()
    windows = [texts[i * window : (i + 1) * window] for i in range(3)]
    delays = [first_detection(model, bundle, [w]) for w in windows]
    print(f"\ntweets: detected in {sum(d is not None for d in delays)}/3 single windows")
    assert all(d is not None and d <= DOMAIN_SHIFT_MAX_DELAY for d in delays)


def test_label_prior_shift_is_detected_within_two_windows(setup):
    model, bundle, replay, window = setup
    negative = replay[replay["label"] == "negative"]
    positive = replay[replay["label"] == "positive"]
    n_negative = int(window * 0.90)
    delays = []
    for trial in range(5):
        windows = []
        for step in range(PRIOR_SHIFT_MAX_DELAY):
            seed = SEED + 10 * trial + step
            mixed = pd.concat(
                [
                    negative.sample(n_negative, random_state=seed),
                    positive.sample(window - n_negative, random_state=seed),
                ]
            ).sample(frac=1.0, random_state=seed)
            windows.append(mixed["text"].tolist())
        delays.append(first_detection(model, bundle, windows))
    print(f"\nlabel-prior shift (90% negative): first detection at windows {delays}")
    assert all(d is not None and d <= PRIOR_SHIFT_MAX_DELAY for d in delays)


def test_domain_shift_raises_the_alarm_after_alarm_flagged_windows(setup):
    """The alarm (the engine's sustained verdict, what DriftDetected fires on) comes
    ``alarm_flagged`` windows into a shift that every window flags."""
    from driftloop.monitor.engine import DriftEngine
    from driftloop.monitor.events import Sample
    from driftloop.monitor.metrics import MonitorMetrics

    model, bundle, _, window = setup
    texts = tweets()["text"].tolist()
    needed = DEFAULT_CONFIG.alarm_flagged
    metrics = MonitorMetrics()
    engine = DriftEngine(
        "m",
        metrics,
        window=window,
        alarm_flagged=needed,
        alarm_of_last=DEFAULT_CONFIG.alarm_of_last,
    )
    engine.set_reference("1", bundle)
    engine.start()
    sustained = []
    try:
        for index in range(needed):
            chunk = texts[index * window : (index + 1) * window]
            labels = model.predict(chunk)
            engine.add([Sample([t], {"label": str(y)}) for t, y in zip(chunk, labels, strict=True)])
            assert engine.wait_idle(120)
            sustained.append(metrics.drift_sustained.labels(model="m", version="1")._value.get())
    finally:
        engine.close()
    print(f"\ntweets: sustained after each window {sustained}")
    assert sustained == [0.0] * (needed - 1) + [1.0]
