"""SQLite batches go in as one statement and read back exactly as row-by-row inserts do."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from driftloop.store import PredictionRecord
from tests.unit.test_store import record, store  # noqa: F401 - the fixture


def test_a_batch_reads_back_field_for_field(store):  # noqa: F811
    moment = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)  # no microseconds: the edge case
    batch = [
        record("a", texts=("café crème", 'quote " and \\ slash'), labels=("positive", "negative")),
        PredictionRecord(
            request_id="b",
            model_name="sentiment",
            model_version=None,
            inputs=["x"],
            outputs=[{"label": "negative", "probabilities": {"negative": 1.0}}],
            label=None,
            confidence=None,
            created_at=moment,
            latency_ms=None,
        ),
        record("c", created_at=moment + timedelta(microseconds=123456)),
    ]
    assert store.insert_predictions(batch) == 3
    for original in batch:
        assert store.get_prediction(original.request_id) == original


def test_packed_rows_keep_their_order_for_retention(store):  # noqa: F811
    old = datetime.now(UTC) - timedelta(days=40)
    store.insert_predictions([record("old", created_at=old), record("new")])
    assert store.delete_older_than(30) == 1
    assert store.get_prediction("old") is None and store.get_prediction("new") is not None


def test_a_value_strict_json_cannot_hold_goes_row_by_row(store):  # noqa: F811
    nan = PredictionRecord(
        request_id="nan",
        model_name="sentiment",
        model_version="1",
        inputs=["x"],
        outputs=[],
        label="positive",
        confidence=math.nan,
    )
    assert store.insert_predictions([nan, record("fine")]) == 2
    assert store.get_prediction("nan").confidence is None  # SQLite keeps NaN as NULL
    assert store.count_predictions() == 2
