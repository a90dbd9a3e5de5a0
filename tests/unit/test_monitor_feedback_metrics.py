"""Feedback metrics from a real SQLite prediction store: only verdicts count as accuracy samples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftloop.monitor.champion import FeedbackSource, WatchedVersion
from driftloop.monitor.service import MonitorService
from driftloop.settings import Settings
from driftloop.store import PredictionRecord, PredictionStore

MODEL = "sentiment"


def prediction(request_id: str, label: str) -> PredictionRecord:
    other = "negative" if label == "positive" else "positive"
    return PredictionRecord(
        request_id=request_id,
        model_name=MODEL,
        model_version="4",
        inputs=[f"text of {request_id}"],
        outputs=[{"label": label, "probabilities": {label: 0.8, other: 0.2}}],
        label=label,
        confidence=0.8,
    )


def sample(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels.get("version") == "4":
                return found.value
    raise AssertionError(f"{name} not exported")


@pytest.fixture
def store_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = PredictionStore(url)
    try:
        store.insert_predictions([prediction(f"r{i}", "positive") for i in range(7)])
        store.add_feedback("r0", label="positive", correct=True)  # a true label: right
        store.add_feedback("r1", label="negative", correct=False)  # a true label: wrong
        store.add_feedback("r2", label=None, correct=True)
        store.add_feedback("r3", label=None, correct=False)
        store.add_feedback("r4", label=None, correct=None)  # no verdict on the prediction
        store.add_feedback("r5", label=None, correct=None)
        store.add_feedback("r6", label="negative", correct=False)
        store.add_feedback("r6", label=None, correct=None)  # the latest feedback counts
    finally:
        store.close()
    return url


def test_live_accuracy_samples_count_only_feedback_that_judges_a_prediction(tmp_path, store_url):
    settings = Settings(home=tmp_path, store_url=store_url)
    service = MonitorService(
        MODEL, settings, feedback_source=FeedbackSource(store_url), watch=False
    )
    service.watched = WatchedVersion("4", None, 0.9, since=datetime(2000, 1, 1, tzinfo=UTC))
    try:
        service.refresh_feedback()
        text = service.metrics.render().decode()
    finally:
        service.close()

    assert sample(text, "driftloop_feedback_since_champion") == 7  # the backlog: every row
    assert sample(text, "driftloop_live_accuracy_samples") == 4
    assert sample(text, "driftloop_live_accuracy_ratio") == pytest.approx(2 / 4)


def test_live_score_is_the_blueprints_metric_over_pairs_with_a_truth(tmp_path, store_url):
    from driftloop.blueprints.feedback import LabelFeedback

    settings = Settings(home=tmp_path, store_url=store_url, score_min_samples=2)
    service = MonitorService(
        MODEL, settings, feedback_source=FeedbackSource(store_url), watch=False
    )
    service.watched = WatchedVersion(
        "4",
        None,
        0.9,
        since=datetime(2000, 1, 1, tzinfo=UTC),
        metric="macro_f1",
        greater_is_better=True,
        feedback=LabelFeedback(),
    )
    try:
        service.refresh_feedback()
        service.use_reference("4", None)  # the champion's test value and direction
        service.metrics.set_champion("sentiment", "4", test_score=0.9, greater_is_better=True)
        text = service.metrics.render().decode()
    finally:
        service.close()
    # r0 (positive, right), r1 (negative, predicted positive): r2..r6 name no truth
    assert sample(text, "driftloop_live_score_samples") == 2
    assert sample(text, "driftloop_live_score") == pytest.approx(1 / 3)  # macro-F1 of 1 of 2 right
    assert sample(text, "driftloop_score_greater_is_better") == 1


def test_live_score_needs_the_minimum_of_pairs(tmp_path, store_url):
    from driftloop.blueprints.feedback import NumberFeedback
    from driftloop.monitor.champion import live_score

    class Pair:
        def __init__(self, outputs, value):
            self.outputs, self.value = outputs, value

    pairs = [
        Pair([{"prediction": 1.0}], 2.0),
        Pair([{"prediction": 3.0}, {"prediction": 3.0}], [3.0, 5.0]),
    ]
    assert live_score(NumberFeedback(), pairs, min_samples=4).value is None
    score = live_score(NumberFeedback(), pairs, min_samples=3)
    assert score.samples == 3 and score.value == pytest.approx(((1 + 0 + 4) / 3) ** 0.5)
