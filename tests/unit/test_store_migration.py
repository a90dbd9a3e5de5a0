"""Store revision 0002 (``feedback.value``, JSON ground truth) over data written at 0001.

Each case builds a store at revision 0001, writes rows with the 0001 schema, upgrades
to head and checks that every row is still there, equal, with ``feedback.value``
backfilled from ``feedback.label``; then it stores what 0001 was not made for (a
numeric ground truth, a regression prediction without a label). SQLite always;
PostgreSQL (``postgres`` marker) in a throwaway database that the ``postgres_url``
fixture creates and drops.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from driftloop.store import (
    PredictionRecord,
    PredictionStore,
    alembic_config,
    create_store_engine,
    migrate,
)

# The tables exactly as revision 0001 created them (no feedback.value).
_v1 = sa.MetaData()
predictions_v1 = sa.Table(
    "predictions",
    _v1,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
    sa.Column("label", sa.String(256), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
)
feedback_v1 = sa.Table(
    "feedback",
    _v1,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "request_id",
        sa.String(128),
        sa.ForeignKey("predictions.request_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("label", sa.String(256), nullable=True),
    sa.Column("correct", sa.Boolean, nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
# feedback as read after 0002
feedback_v2 = sa.Table(
    "feedback",
    sa.MetaData(),
    *(sa.Column(c.name, c.type) for c in feedback_v1.columns),
    sa.Column("value", sa.JSON(none_as_null=True)),
)

T0 = datetime(2026, 11, 30, 12, 0, 0)


def _outputs(*labels: str) -> list[dict]:
    probabilities = {"positive": {"negative": 0.2, "positive": 0.8}}
    return [
        {
            "label": label,
            "probabilities": probabilities.get(label, {"negative": 0.9, "positive": 0.1}),
            "low_confidence": False,
        }
        for label in labels
    ]


def _v1_rows() -> tuple[list[dict], list[dict]]:
    predictions = [
        {
            "request_id": "a",
            "model_name": "sentiment",
            "model_version": "1",
            "inputs": ["good"],
            "outputs": _outputs("positive"),
            "label": "positive",
            "confidence": 0.8,
            "created_at": T0,
            "latency_ms": 1.5,
        },
        {
            "request_id": "b",
            "model_name": "sentiment",
            "model_version": "2",
            "inputs": ["bad", "awful ünïcode ✓"],
            "outputs": _outputs("negative", "negative"),
            "label": "negative",
            "confidence": 0.9,
            "created_at": T0 + timedelta(minutes=1),
            "latency_ms": None,
        },
        {
            "request_id": "c",
            "model_name": "sentiment",
            "model_version": "2",
            "inputs": ["meh"],
            "outputs": _outputs("positive"),
            "label": "positive",
            "confidence": 0.55,
            "created_at": T0 + timedelta(minutes=2),
            "latency_ms": 3.0,
        },
    ]
    feedback = [
        # a's history: first "negative", then "positive" (the current one)
        {"request_id": "a", "label": "negative", "correct": False, "source": "api"},
        {"request_id": "a", "label": "positive", "correct": True, "source": "api"},
        {"request_id": "b", "label": "negative", "correct": True, "source": "batch"},
        {"request_id": "c", "label": None, "correct": False, "source": "api"},  # only "wrong"
    ]
    for index, row in enumerate(feedback):
        row["created_at"] = T0 + timedelta(hours=1, minutes=index)
    return predictions, feedback


def _dump(engine: sa.Engine, table: sa.Table) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    return [
        {k: (v.replace(tzinfo=None) if isinstance(v, datetime) else v) for k, v in row.items()}
        for row in rows
    ]


def _revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("select version_num from alembic_version")).scalar_one()


def _columns(engine: sa.Engine, table: str) -> dict[str, dict]:
    return {c["name"]: c for c in sa.inspect(engine).get_columns(table)}


def _store_at_0001_with_rows(url: str) -> tuple[sa.Engine, list[dict], list[dict]]:
    engine = create_store_engine(url)
    migrate(engine, "0001")
    assert _revision(engine) == "0001"
    assert "value" not in _columns(engine, "feedback")
    predictions, feedback = _v1_rows()
    with engine.begin() as conn:
        conn.execute(predictions_v1.insert(), predictions)
        conn.execute(feedback_v1.insert(), feedback)
    return engine, _dump(engine, predictions_v1), _dump(engine, feedback_v1)


HEAD = "0003"  # observation_keys: predictions resolved by observation


def _check_upgrade_keeps_rows_and_takes_new_kinds(url: str) -> None:
    engine, predictions_before, feedback_before = _store_at_0001_with_rows(url)
    assert len(predictions_before) == 3 and len(feedback_before) == 4

    migrate(engine)
    assert _revision(engine) == HEAD
    columns = _columns(engine, "predictions")
    assert columns["label"]["nullable"] and columns["confidence"]["nullable"]
    assert _columns(engine, "feedback")["value"]["nullable"]

    assert _dump(engine, predictions_v1) == predictions_before
    feedback_after = _dump(engine, feedback_v2)
    assert [{k: v for k, v in row.items() if k != "value"} for row in feedback_after] == (
        feedback_before
    )
    assert [row["value"] for row in feedback_after] == [row["label"] for row in feedback_before]
    with engine.connect() as conn:  # no feedback named a label: SQL NULL, not JSON null
        nulls = conn.execute(sa.text("select count(*) from feedback where value is null"))
        assert nulls.scalar_one() == 1
    engine.dispose()

    store = PredictionStore(url)
    try:
        # the classifier readers see exactly what they saw before
        assert [(f.label, f.value) for f in store.feedback_history("a")] == [
            ("negative", "negative"),
            ("positive", "positive"),
        ]
        truths = {pair.request_id: pair.value for pair in store.feedback_pairs("sentiment")}
        assert truths == {"a": "positive", "b": "negative", "c": None}
        stats = store.feedback_stats("sentiment")
        assert (stats.count, stats.judged, stats.correct) == (3, 3, 2)

        # what 0001 was not made for: a regression prediction and a numeric ground truth
        store.insert_predictions(
            [
                PredictionRecord(
                    request_id="price-1",
                    model_name="prices",
                    model_version="7",
                    inputs=[{"window": [101.5, 102.0, 99.75], "ticker": "ACME"}],
                    outputs=[{"prediction": 100.25}],
                    label=None,
                    confidence=None,
                ),
                PredictionRecord(
                    request_id="recs-1",
                    model_name="recs",
                    model_version="3",
                    inputs=[{"user_id": "u-42"}],
                    outputs=[{"items": ["i9", "i3", "i7"]}],
                    label=None,
                    confidence=None,
                ),
            ]
        )
        regression = store.get_prediction("price-1")
        assert regression.label is None and regression.confidence is None
        assert regression.labels == [None]
        assert regression.outputs == [{"prediction": 100.25}]
        numeric = store.add_feedback("price-1", value=100.5, source="market")
        assert (numeric.value, numeric.label, numeric.correct) == (100.5, None, None)
        store.add_feedback("recs-1", value=["i3", "i8"])
        store.add_feedback("recs-1", value={"clicked": ["i3"], "bought": []})

        [pair] = store.feedback_pairs("prices")
        assert (pair.request_id, pair.model_version, pair.value) == ("price-1", "7", 100.5)
        assert pair.inputs == [{"window": [101.5, 102.0, 99.75], "ticker": "ACME"}]
        assert pair.outputs == [{"prediction": 100.25}]
        assert pair.created_at.tzinfo is not None and pair.feedback_at >= pair.created_at
        [pair] = store.feedback_pairs("recs")  # the current (latest) feedback only
        assert pair.value == {"clicked": ["i3"], "bought": []}
        assert [f.value for f in store.feedback_history("recs-1")] == [
            ["i3", "i8"],
            {"clicked": ["i3"], "bought": []},
        ]

        # old rows read through the new reader: value backfilled, oldest feedback first
        pairs = store.feedback_pairs("sentiment")
        assert [(p.request_id, p.value, p.correct) for p in pairs] == [
            ("a", "positive", True),
            ("b", "negative", True),
            ("c", None, False),
        ]
        assert pairs[1].inputs == ["bad", "awful ünïcode ✓"]
        assert pairs[1].outputs == predictions_before[1]["outputs"]
    finally:
        store.close()


def test_upgrade_from_0001_on_sqlite(tmp_path):
    _check_upgrade_keeps_rows_and_takes_new_kinds(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.postgres
def test_upgrade_from_0001_on_postgres(postgres_url):
    _check_upgrade_keeps_rows_and_takes_new_kinds(postgres_url)


def test_downgrade_to_0001_and_up_again_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine, predictions_before, feedback_before = _store_at_0001_with_rows(url)
    migrate(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert _revision(engine) == "0001"
    assert "value" not in _columns(engine, "feedback")
    assert _dump(engine, predictions_v1) == predictions_before
    assert _dump(engine, feedback_v1) == feedback_before
    # the rebuilt feedback table still cascades from its prediction
    with engine.begin() as conn:
        conn.execute(predictions_v1.delete().where(predictions_v1.c.request_id == "a"))
        left = conn.execute(sa.select(sa.func.count()).select_from(feedback_v1)).scalar_one()
    assert left == 2
    migrate(engine)
    assert _revision(engine) == HEAD
    assert [row["value"] for row in _dump(engine, feedback_v2)] == ["negative", None]
    engine.dispose()


def _strict_store_at_0001(url: str) -> sa.Engine:
    """A 0001 store whose predictions.label/confidence are NOT NULL (0001 never made one)."""
    strict = sa.MetaData()
    for table in (predictions_v1, feedback_v1):
        copy = table.to_metadata(strict)
        if copy.name == "predictions":
            copy.c.label.nullable = False
            copy.c.confidence.nullable = False
    engine = create_store_engine(url)
    strict.create_all(engine)
    with engine.begin() as conn:
        command.stamp(alembic_config(conn), "0001")
    return engine


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_not_null_prediction_columns_are_relaxed_and_feedback_kept(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'strict.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = _strict_store_at_0001(url)
    assert not _columns(engine, "predictions")["label"]["nullable"]
    predictions, feedback = _v1_rows()
    with engine.begin() as conn:
        conn.execute(predictions_v1.insert(), predictions)
        conn.execute(feedback_v1.insert(), feedback)
    predictions_before = _dump(engine, predictions_v1)
    feedback_before = _dump(engine, feedback_v1)

    migrate(engine)
    columns = _columns(engine, "predictions")
    assert columns["label"]["nullable"] and columns["confidence"]["nullable"]
    assert _dump(engine, predictions_v1) == predictions_before
    assert [{k: v for k, v in r.items() if k != "value"} for r in _dump(engine, feedback_v2)] == (
        feedback_before
    )
    with engine.begin() as conn:  # the foreign key still holds and still cascades
        conn.execute(predictions_v1.delete().where(predictions_v1.c.request_id == "a"))
        left = conn.execute(sa.select(sa.func.count()).select_from(feedback_v1)).scalar_one()
    assert left == 2
    engine.dispose()


def test_add_feedback_value_and_label(tmp_path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.insert_predictions(
            [
                PredictionRecord(
                    f"r{i}", "sentiment", "1", ["x"], _outputs("positive"), "positive", 0.8
                )
                for i in range(4)
            ]
        )
        assert store.add_feedback("r0", label="negative", correct=False).value == "negative"
        by_value = store.add_feedback("r1", value="negative")  # a string value names a class
        assert (by_value.label, by_value.value) == ("negative", "negative")
        assert store.add_feedback("r2", correct=True).value is None
        both = store.add_feedback("r3", label="positive", value={"label": "positive", "note": "!"})
        assert (both.label, both.value) == ("positive", {"label": "positive", "note": "!"})
        named = {p.request_id for p in store.feedback_pairs("sentiment") if p.value is not None}
        assert named == {"r0", "r1", "r3"}
    finally:
        store.close()


def test_feedback_pairs_since_version_limit(tmp_path):
    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    now = datetime.now(UTC)
    try:
        store.insert_predictions(
            [
                PredictionRecord(
                    f"r{i}", "prices", str(1 + i % 2), [{"x": i}], [{"prediction": i}], None, None
                )
                for i in range(5)
            ]
        )
        for i in range(5):
            store.add_feedback(f"r{i}", value=float(i), created_at=now - timedelta(days=5 - i))
        assert [p.value for p in store.feedback_pairs("prices")] == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert [p.value for p in store.feedback_pairs("prices", limit=2)] == [3.0, 4.0]
        since = now - timedelta(days=3, hours=1)
        assert [p.value for p in store.feedback_pairs("prices", since=since)] == [2.0, 3.0, 4.0]
        assert [p.value for p in store.feedback_pairs("prices", version="2")] == [1.0, 3.0]
        assert store.feedback_pairs("nobody") == []
    finally:
        store.close()
