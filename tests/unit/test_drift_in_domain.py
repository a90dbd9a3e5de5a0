"""No false alarm from in-domain traffic: a champion's reference, fitted on its held-out
split (validation + test) as the pipeline fits it, does not flag unseen rows of the
source it was trained on -- at least 50 monitor windows, no sustained alarm.

"No alarm" here: no two consecutive windows flagged (the issue's DriftDetected held
from window to window), and single flagged windows no more often than the configured
family-wise p_val (0.01 per window) allows: at most 2 of 50 (P(>2) = 1.4 % for a
calibrated reference). A calibrated test flags ~1 % of unshifted windows by design;
zero flagged windows in every 50 would need a lower ``p_val``, not another reference.
Measured on the Olist case over 300 windows: 3 flagged (1.0 %) with this seed, 0 with
seed 1 -- the reference fitted on held-out rows is calibrated.

Cases: part of the offline default data ("sentiment-offline"), and the Olist reviews
sample when ``/work/shared/data/olist`` holds it (the issue's replay: Olist reviews of
the champion's own source fired DriftDetected within 60 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.monitor.config import DEFAULT_CONFIG
from driftloop.monitor.reference import build_reference
from driftloop.settings import Settings
from driftloop.training.splits import split_frame

pytestmark = pytest.mark.slow

OLIST_SAMPLE = Path("/work/shared/data/olist/olist_order_reviews_sample.csv")
WINDOWS = 50
SEED = 42


def offline_source() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the champion is trained and referenced on, unseen rows of the same source)."""
    from tests.unit.conftest_monitor import corpus

    frame = corpus()
    window = DEFAULT_CONFIG.window_size(Settings.model_construct())
    unseen = WINDOWS * window  # disjoint windows
    return frame.iloc[: len(frame) - unseen], frame.iloc[len(frame) - unseen :]


def olist_source() -> tuple[pd.DataFrame, pd.DataFrame]:
    if not OLIST_SAMPLE.exists():
        pytest.skip(f"{OLIST_SAMPLE} not present")
    from driftloop.datasets import load_dataset

    frame = load_dataset("olist-reviews", str(OLIST_SAMPLE))
    order = np.random.default_rng(5).permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    cut = int(len(frame) * 0.6)
    return frame.iloc[:cut], frame.iloc[cut:]


def windows_of(unseen: pd.DataFrame, window: int) -> list[list[str]]:
    texts = unseen["text"].tolist()
    if len(texts) >= WINDOWS * window:
        return [texts[i * window : (i + 1) * window] for i in range(WINDOWS)]
    # a small sample: each window a fresh random draw of unseen rows (no row twice in one)
    rng = np.random.default_rng(SEED)
    return [
        [texts[i] for i in rng.choice(len(texts), size=window, replace=False)]
        for _ in range(WINDOWS)
    ]


@pytest.mark.parametrize("source", ["sentiment-offline", "olist"])
def test_unseen_in_domain_windows_raise_no_alarm(source):
    from driftloop.blueprints import get_blueprint

    known, unseen = offline_source() if source == "sentiment-offline" else olist_source()
    splits = split_frame(known, seed=SEED)
    blueprint = get_blueprint("sentiment")
    model = blueprint.candidates(SEED)["logreg"]
    model.fit(splits.train["text"].tolist(), splits.train["label"].tolist())
    held_out = pd.concat([splits.val, splits.test], ignore_index=True)
    bundle = build_reference(blueprint, model, held_out, config=DEFAULT_CONFIG, seed=SEED)
    window = DEFAULT_CONFIG.window_size(Settings.model_construct())
    alarms = []
    lowest: dict[str, float] = {}
    for texts in windows_of(unseen, window):
        outputs = [{"label": str(label)} for label in model.predict(texts)]
        results = bundle.detectors.run(bundle.featurizer.transform(texts, outputs))
        alarms.append([r.name for r in results if r.detected])
        for r in results:
            if r.p_value == r.p_value:
                lowest[r.name] = min(r.p_value, lowest.get(r.name, 1.0))
    flagged = [names for names in alarms if names]
    sustained = sum(1 for a, b in zip(alarms, alarms[1:], strict=False) if a and b)
    print(
        f"\n{source}: train {len(splits.train)}, reference {len(held_out)} held-out rows, "
        f"{len(alarms)} windows of {window} unseen rows, {len(flagged)} with drift "
        f"({sustained} sustained); lowest p per detector "
        f"{ {k: round(v, 4) for k, v in lowest.items()} }"
    )
    assert len(alarms) >= WINDOWS
    assert sustained == 0, alarms
    assert len(flagged) <= 2, alarms
