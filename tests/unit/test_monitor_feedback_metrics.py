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
    assert sample(text, "driftloop_live_accuracy") == pytest.approx(2 / 4)
