"""Prediction log and feedback store (SQLAlchemy 2; SQLite by default, PostgreSQL in a cluster).

One row per predict request (its per-instance inputs and outputs as JSON, served
version, latency) and an append-only feedback table: a second feedback for the
same request adds a row, and the *current* feedback is the latest row. Inputs,
outputs and the feedback's ground truth (``value``) are any JSON, so a table row,
an image summary or a price window and a number, a list of item ids or an
observation fit as well as a text and its label. The schema is owned by the
Alembic migrations shipped in ``driftloop/store/migrations``;
:func:`migrate` applies them and every :class:`PredictionStore` runs it on open.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from driftloop import alembic_chain
from driftloop.store.schema import feedback as feedback_table
from driftloop.store.schema import observation_keys as observation_keys_table
from driftloop.store.schema import predictions as predictions_table

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LABEL_MAX = 256  # feedback.label's length


@dataclass(frozen=True)
class PredictionRecord:
    request_id: str
    model_name: str
    model_version: str | None
    inputs: list[Any]  # one JSON value per instance (a text, a table row, ...)
    outputs: list[Any]  # one JSON value per instance (a class + probabilities, a number, ...)
    label: str | None  # the first instance's class; None where the answer is not a class
    confidence: float | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    latency_ms: float | None = None
    # per instance: the (series, ISO date) whose observation resolves it, or None (the
    # blueprint's ``Feedback.observation_key``); empty when no instance names one
    observation_keys: list[tuple[str, str] | None] = field(default_factory=list)

    @property
    def labels(self) -> list[str | None]:
        """Each instance's predicted class (None for an output that names none)."""
        return [
            output.get("label") if isinstance(output, dict) else None for output in self.outputs
        ]


@dataclass(frozen=True)
class FeedbackRecord:
    request_id: str
    label: str | None  # a class the ground truth names (classifiers)
    correct: bool | None  # a verdict on the prediction
    source: str
    created_at: datetime
    value: Any = None  # the ground truth as JSON: a label, a number, item ids, an object


@dataclass(frozen=True)
class FeedbackPair:
    """A logged prediction with its current feedback: what a live score or a training row
    is computed from."""

    request_id: str
    model_version: str | None
    inputs: list[Any]
    outputs: list[Any]
    value: Any  # the current feedback's ground truth (None: the feedback named none)
    label: str | None
    correct: bool | None
    created_at: datetime  # when the prediction was made
    feedback_at: datetime  # when its current feedback was given


@dataclass(frozen=True)
class ObservedPrediction:
    """A prediction one of whose instances forecasts ``(series, date)``."""

    series: str
    date: str
    instance: int
    prediction: PredictionRecord


@dataclass(frozen=True)
class FeedbackStats:
    count: int
    correct: int
    judged: int  # rows with a verdict (correct true/false): what accuracy is computed over
    accuracy: float | None  # None while there is no feedback to judge by


def create_store_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    url_obj = sa.make_url(url)
    if url_obj.get_backend_name() != "sqlite":
        connect_args = {}
        if url_obj.get_backend_name() == "postgresql" and "connect_timeout" not in url_obj.query:
            # an unreachable host fails a connect in seconds, not after the TCP timeout
            connect_args["connect_timeout"] = 10
        return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if url_obj.database and url_obj.database != ":memory:":
        Path(url_obj.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001 - SQLAlchemy hook
        cursor = dbapi_connection.cursor()
        # WAL lets the flusher write while feedback lookups and other workers read.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def alembic_config(connection: sa.Connection):  # noqa: ANN201 - alembic.config.Config
    """An Alembic config for the store's migrations, running on ``connection``."""
    return alembic_chain.alembic_config(MIGRATIONS_DIR, connection)


def migrate(url: str | sa.Engine, revision: str = "head") -> None:
    """Bring the store schema at ``url`` up to ``revision`` (the newest by default)."""
    alembic_chain.upgrade(MIGRATIONS_DIR, url, revision, create_engine=create_store_engine)


# SQLite: a batch of predictions in ONE statement (one JSON array parameter, one
# step). executemany steps SQLite once per row and releases the GIL around each
# step; in the serving process every one of those hand-offs interrupts inference.
# Measured on 2 cores, a thread calling the sentiment model's predict_proba lost
# ~16 % of its rate to a flusher inserting its rows row by row, ~6 % with this.
_PACKED_COLUMNS = (
    "request_id",
    "model_name",
    "model_version",
    "inputs",
    "outputs",
    "label",
    "confidence",
    "created_at",
    "latency_ms",
)
_SQLITE_INSERT_FROM_JSON = sa.text(
    f"INSERT INTO predictions ({', '.join(_PACKED_COLUMNS)}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_PACKED_COLUMNS)))
    + " FROM json_each(:rows)"
)


def _packed_for_sqlite(rows: list[dict]) -> str | None:
    """The rows as one JSON array of arrays, or None when strict JSON cannot hold them."""
    packed = [
        [
            *(row[name] for name in _PACKED_COLUMNS[:7]),
            # the text SQLAlchemy's SQLite DateTime stores and parses back
            row["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f"),
            row["latency_ms"],
        ]
        for row in rows
    ]
    try:
        return json.dumps(packed, allow_nan=False)
    except (TypeError, ValueError):  # NaN or a non-JSON value: the per-row path decides
        return None


class PredictionStore:
    """Read/write access to the prediction log and feedback tables."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine = create_store_engine(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        if run_migrations:
            migrate(self.engine)

    # --- time handling: SQLite keeps no offsets, so it gets naive UTC ---------
    def _to_db(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
        return moment.replace(tzinfo=None) if self._sqlite else moment

    @staticmethod
    def _from_db(moment: datetime) -> datetime:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    # --- predictions ----------------------------------------------------------
    def insert_predictions(self, records: Iterable[PredictionRecord]) -> int:
        records = list(records)
        rows = [
            {
                "request_id": r.request_id,
                "model_name": r.model_name,
                "model_version": r.model_version,
                "inputs": list(r.inputs),
                "outputs": list(r.outputs),
                "label": r.label,
                "confidence": r.confidence,
                "created_at": self._to_db(r.created_at),
                "latency_ms": r.latency_ms,
            }
            for r in records
        ]
        if not rows:
            return 0
        keys = [
            {"request_id": r.request_id, "instance": index, "series": key[0],
             "target_date": key[1]}
            for r in records
            for index, key in enumerate(r.observation_keys)
            if key is not None
        ]  # fmt: skip
        packed = _packed_for_sqlite(rows) if self._sqlite and len(rows) > 1 else None
        with self.engine.begin() as conn:
            if packed is not None:
                conn.execute(_SQLITE_INSERT_FROM_JSON, {"rows": packed})
            else:
                conn.execute(predictions_table.insert(), rows)
            if keys:
                conn.execute(observation_keys_table.insert(), keys)
        return len(rows)

    def _record(self, row) -> PredictionRecord:  # noqa: ANN001 - a Row
        return PredictionRecord(
            request_id=row.request_id,
            model_name=row.model_name,
            model_version=row.model_version,
            inputs=list(row.inputs),
            outputs=list(row.outputs),
            label=row.label,
            confidence=row.confidence,
            created_at=self._from_db(row.created_at),
            latency_ms=row.latency_ms,
        )

    def get_prediction(self, request_id: str) -> PredictionRecord | None:
        query = sa.select(predictions_table).where(predictions_table.c.request_id == request_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._record(row)

    def get_predictions(self, request_ids: Iterable[str]) -> dict[str, PredictionRecord]:
        """The predictions among ``request_ids`` that exist, by request id (one query per
        500 ids)."""
        wanted = list(dict.fromkeys(request_ids))
        found: dict[str, PredictionRecord] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                query = sa.select(predictions_table).where(
                    predictions_table.c.request_id.in_(chunk)
                )
                for row in conn.execute(query):
                    found[row.request_id] = self._record(row)
        return found

    def predictions_observing(self, keys: Iterable[tuple[str, str]]) -> list[ObservedPrediction]:
        """Every logged prediction instance that forecasts one of ``keys`` (series, ISO
        date), oldest prediction first (one query per 500 keys)."""
        wanted = list(dict.fromkeys((str(s), str(d)) for s, d in keys))
        found: list[ObservedPrediction] = []
        key_columns = sa.tuple_(observation_keys_table.c.series,
                                observation_keys_table.c.target_date)  # fmt: skip
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = (
                    sa.select(
                        predictions_table,
                        observation_keys_table.c.series.label("observed_series"),
                        observation_keys_table.c.target_date,
                        observation_keys_table.c.instance,
                    )
                    .join(
                        observation_keys_table,
                        observation_keys_table.c.request_id == predictions_table.c.request_id,
                    )
                    .where(key_columns.in_(wanted[start : start + 500]))
                    .order_by(predictions_table.c.id, observation_keys_table.c.instance)
                )
                for row in conn.execute(query):
                    found.append(
                        ObservedPrediction(
                            row.observed_series, row.target_date, row.instance, self._record(row)
                        )
                    )
        return found

    def current_feedback_values(self, request_ids: Iterable[str]) -> dict[str, Any]:
        """The ground truth of each request's current (latest) feedback, where it has one."""
        wanted = list(dict.fromkeys(request_ids))
        values: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                latest = (
                    sa.select(sa.func.max(feedback_table.c.id))
                    .where(feedback_table.c.request_id.in_(wanted[start : start + 500]))
                    .group_by(feedback_table.c.request_id)
                )
                query = sa.select(feedback_table.c.request_id, feedback_table.c.value).where(
                    feedback_table.c.id.in_(latest)
                )
                for row in conn.execute(query):
                    if row.value is not None:
                        values[row.request_id] = row.value
        return values

    def count_predictions(self, model_name: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(predictions_table)
        if model_name is not None:
            query = query.where(predictions_table.c.model_name == model_name)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # --- feedback --------------------------------------------------------------
    def add_feedback(
        self,
        request_id: str,
        *,
        label: str | None = None,
        correct: bool | None = None,
        value: Any = None,
        source: str = "api",
        created_at: datetime | None = None,
    ) -> FeedbackRecord:
        """Append a feedback row; raises ``KeyError`` when the request was never logged.

        ``value`` is the ground truth, any JSON (a label, a number, a list of item
        ids, an object). Given only ``label``, the value is that label; given a
        string ``value`` and no ``label``, the label is that string (it names a
        class), so the classifier readers see it.
        """
        if value is None:
            value = label
        elif label is None and isinstance(value, str) and len(value) <= _LABEL_MAX:
            label = value
        moment = created_at or datetime.now(UTC)
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(predictions_table.c.id).where(
                    predictions_table.c.request_id == request_id
                )
            ).first()
            if exists is None:
                raise KeyError(request_id)
            conn.execute(
                feedback_table.insert().values(
                    request_id=request_id,
                    label=label,
                    correct=correct,
                    value=value,
                    source=source,
                    created_at=self._to_db(moment),
                )
            )
        return FeedbackRecord(
            request_id, label, correct, source, self._from_db(moment), value=value
        )

    def feedback_history(self, request_id: str) -> list[FeedbackRecord]:
        query = (
            sa.select(feedback_table)
            .where(feedback_table.c.request_id == request_id)
            .order_by(feedback_table.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            FeedbackRecord(
                r.request_id,
                r.label,
                r.correct,
                r.source,
                self._from_db(r.created_at),
                value=r.value,
            )
            for r in rows
        ]

    def _current_feedback_query(self, model_name: str, *columns: sa.ColumnElement):
        """Each prediction of ``model_name`` with its latest feedback row, oldest feedback first.

        Selects request id, inputs, model version, feedback label/correct/created_at
        and ``columns``.
        """
        latest = (
            sa.select(sa.func.max(feedback_table.c.id).label("id"))
            .group_by(feedback_table.c.request_id)
            .subquery()
        )
        return (
            sa.select(
                predictions_table.c.request_id,
                predictions_table.c.inputs,
                predictions_table.c.model_version,
                feedback_table.c.label,
                feedback_table.c.correct,
                feedback_table.c.created_at,
                *columns,
            )
            .join(feedback_table, feedback_table.c.request_id == predictions_table.c.request_id)
            .join(latest, latest.c.id == feedback_table.c.id)
            .where(predictions_table.c.model_name == model_name)
            .order_by(feedback_table.c.id)
        )

    def feedback_pairs(
        self,
        model_name: str,
        since: datetime | None = None,
        limit: int | None = None,
        *,
        version: str | None = None,
    ) -> list[FeedbackPair]:
        """Predictions of ``model_name`` that have feedback, each with its current feedback.

        Oldest feedback first. ``since``: only feedback given at or after it;
        ``version``: only predictions served by that model version; ``limit``: the
        newest ``limit`` pairs. A pair's ``value`` is None when the feedback only
        said right/wrong.
        """
        query = self._current_feedback_query(
            model_name,
            predictions_table.c.outputs,
            predictions_table.c.created_at.label("predicted_at"),
            feedback_table.c.value,
        )
        if since is not None:
            query = query.where(feedback_table.c.created_at >= self._to_db(since))
        if version is not None:
            query = query.where(predictions_table.c.model_version == str(version))
        if limit is not None:  # the newest ``limit``, handed back oldest first
            query = query.order_by(None).order_by(feedback_table.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if limit is not None:
            rows.reverse()
        return [
            FeedbackPair(
                request_id=row.request_id,
                model_version=row.model_version,
                inputs=list(row.inputs),
                outputs=list(row.outputs),
                value=row.value,
                label=row.label,
                correct=row.correct,
                created_at=self._from_db(row.predicted_at),
                feedback_at=self._from_db(row.created_at),
            )
            for row in rows
        ]

    def feedback_stats(
        self, model_name: str, since: datetime | None = None, version: str | None = None
    ) -> FeedbackStats:
        """Current feedback of ``model_name`` (given at or after ``since``, for ``version``)."""
        query = self._current_feedback_query(model_name)
        if since is not None:
            query = query.where(feedback_table.c.created_at >= self._to_db(since))
        if version is not None:
            query = query.where(predictions_table.c.model_version == str(version))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        judged = [row.correct for row in rows if row.correct is not None]
        correct = sum(1 for value in judged if value)
        accuracy = correct / len(judged) if judged else None
        return FeedbackStats(
            count=len(rows), correct=correct, judged=len(judged), accuracy=accuracy
        )

    # --- retention --------------------------------------------------------------
    def delete_older_than(self, days: float, *, now: datetime | None = None) -> int:
        """Delete predictions (and their feedback) logged more than ``days`` ago."""
        cutoff = self._to_db((now or datetime.now(UTC)) - timedelta(days=days))
        old_ids = sa.select(predictions_table.c.request_id).where(
            predictions_table.c.created_at < cutoff
        )
        with self.engine.begin() as conn:
            conn.execute(feedback_table.delete().where(feedback_table.c.request_id.in_(old_ids)))
            conn.execute(
                observation_keys_table.delete().where(
                    observation_keys_table.c.request_id.in_(old_ids)
                )
            )
            result = conn.execute(
                predictions_table.delete().where(predictions_table.c.created_at < cutoff)
            )
        return int(result.rowcount or 0)

    def close(self) -> None:
        self.engine.dispose()
