"""Prediction/feedback store on SQLite: migrations, queries, retention, the async writer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from driftloop.serving import metrics
from driftloop.store import PredictionRecord, PredictionStore, migrate
from driftloop.store.writer import StoreWriter


def record(
    request_id: str,
    texts=("good",),
    labels=("positive",),
    *,
    model="sentiment",
    version="1",
    created_at=None,
) -> PredictionRecord:
    outputs = [
        {
            "label": label,
            "probabilities": {"negative": 0.2, "positive": 0.8}
            if label == "positive"
            else {"negative": 0.9, "positive": 0.1},
            "low_confidence": False,
        }
        for label in labels
    ]
    return PredictionRecord(
        request_id=request_id,
        model_name=model,
        model_version=version,
        inputs=list(texts),
        outputs=outputs,
        label=labels[0],
        confidence=0.8,
        created_at=created_at or datetime.now(UTC),
        latency_ms=1.5,
    )


@pytest.fixture
def store(tmp_path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'sub' / 'store.db'}")
    yield store
    store.close()


def test_migrate_creates_tables_and_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    migrate(url)
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        revision = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
        journal = conn.execute(sa.text("pragma journal_mode")).scalar_one()
    engine.dispose()
    assert {"predictions", "feedback", "observation_keys", "alembic_version"} <= names
    assert revision == "0003"
    assert journal == "wal"


def test_insert_get_count(store):
    store.insert_predictions([record("a"), record("b", model="other")])
    got = store.get_prediction("a")
    assert got.inputs == ["good"] and got.labels == ["positive"] and got.model_version == "1"
    assert got.created_at.tzinfo is not None
    assert store.get_prediction("missing") is None
    assert store.count_predictions() == 2
    assert store.count_predictions("sentiment") == 1


def test_feedback_history_kept_and_latest_wins(store):
    store.insert_predictions([record("a"), record("b", texts=("bad",), labels=("negative",))])
    store.add_feedback("a", label="negative", correct=False)
    store.add_feedback("a", label="positive", correct=True)
    store.add_feedback("b", label="negative", correct=True)
    assert [f.label for f in store.feedback_history("a")] == ["negative", "positive"]
    pairs = store.feedback_pairs("sentiment")
    assert {p.request_id: p.value for p in pairs} == {"a": "positive", "b": "negative"}
    stats = store.feedback_stats("sentiment")
    assert (stats.count, stats.correct, stats.accuracy) == (2, 2, 1.0)


def test_feedback_for_unknown_request_raises(store):
    with pytest.raises(KeyError):
        store.add_feedback("nope", label="positive", correct=None)


def test_feedback_becomes_training_rows_one_per_instance(store, tmp_path):
    from driftloop.datasets import write_frame
    from driftloop.training.data_steps import merge_feedback

    store.insert_predictions(
        [record("m", texts=("x", "y"), labels=("positive", "positive")), record("u")]
    )
    store.add_feedback("m", label="negative", correct=False)
    store.add_feedback("u", label=None, correct=False)  # "wrong" alone names no truth
    base = write_frame(
        pd.DataFrame({"id": ["b1", "m:0"], "text": ["base", "stale"], "label": ["positive"] * 2}),
        tmp_path / "base.parquet",
    )
    summary = merge_feedback(base, tmp_path / "merged.parquet", "sentiment", "sentiment", store.url)
    merged = pd.read_parquet(tmp_path / "merged.parquet").set_index("id")
    assert summary["feedback_rows"] == 2 and summary["duplicates_dropped"] == 1
    # the user's truth wins over the row it corrects
    assert merged.to_dict("index") == {
        "b1": {"text": "base", "label": "positive"},
        "m:0": {"text": "x", "label": "negative"},
        "m:1": {"text": "y", "label": "negative"},
    }
    assert store.feedback_pairs("nobody") == []


def test_feedback_stats_since_and_version(store):
    store.insert_predictions([record("old", version="1"), record("new", version="2")])
    past = datetime.now(UTC) - timedelta(days=2)
    store.add_feedback("old", label="negative", correct=False, created_at=past)
    store.add_feedback("new", label="positive", correct=True)
    assert store.feedback_stats("sentiment").count == 2
    since = store.feedback_stats("sentiment", since=datetime.now(UTC) - timedelta(days=1))
    assert (since.count, since.correct, since.accuracy) == (1, 1, 1.0)
    v1 = store.feedback_stats("sentiment", version="1")
    assert (v1.count, v1.correct, v1.accuracy) == (1, 0, 0.0)
    assert store.feedback_stats("sentiment", version="9").accuracy is None


def test_retention_deletes_old_rows_and_their_feedback(store):
    old = datetime.now(UTC) - timedelta(days=40)
    store.insert_predictions([record("old", created_at=old), record("fresh")])
    store.add_feedback("old", label="positive", correct=True)
    assert store.delete_older_than(30) == 1
    assert store.get_prediction("old") is None and store.get_prediction("fresh") is not None
    assert store.feedback_history("old") == []


def test_writer_flush_and_close_write_everything(store):
    writer = StoreWriter(store, queue_size=1000, batch_size=7).start()
    for i in range(50):
        assert writer.submit(record(f"r{i}"))
    assert writer.flush(timeout=10)
    assert store.count_predictions() == 50
    threads = [
        threading.Thread(target=lambda k=k: [writer.submit(record(f"t{k}-{i}")) for i in range(25)])
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    assert store.count_predictions() == 150
    assert not writer.submit(record("late"))  # closed: refused, counted as dropped


def test_writer_full_queue_drops_and_counts(store):
    writer = StoreWriter(store, queue_size=3)  # not started: nothing drains the queue
    before = metrics.STORE_DROPPED._value.get()
    accepted = [writer.submit(record(f"q{i}")) for i in range(5)]
    assert accepted == [True, True, True, False, False]
    assert metrics.STORE_DROPPED._value.get() - before == 2
    writer.close()  # never started: close writes what was queued
    assert store.count_predictions() == 3


def test_writer_duplicate_request_id_does_not_sink_the_batch(store):
    writer = StoreWriter(store, write_retries=1).start()
    writer.submit(record("dup"))
    writer.submit(record("dup"))
    writer.submit(record("ok"))
    writer.close()
    assert store.count_predictions() == 2
