"""The trigger's memory: alerts already acted on, every decision, every run.

Kept in a small SQLite database under ``settings.home`` so a restarted trigger
neither relaunches an alert it already handled nor forgets what it did. The
schema is owned by the ledger's own Alembic chain (``trigger/migrations``, version
table ``driftloop_ledger_alembic_version``, so it can share a database with the
prediction store); :func:`migrate` applies it and every :class:`Ledger` runs it
on open. A ledger database made before the chain existed is upgraded in place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from driftloop import alembic_chain

OUTCOMES = ("launched", "deduplicated", "cooling_down", "busy", "rejected", "resolved_ignored")
RUN_STATES = ("running", "succeeded", "failed", "lost")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "driftloop_ledger_alembic_version"

# What the code queries against; the migrations create exactly these tables.
metadata = sa.MetaData()

seen_alerts = sa.Table(
    "trigger_seen_alerts",
    metadata,
    sa.Column("fingerprint", sa.String(128), primary_key=True),
    sa.Column("starts_at", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(128)),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)

decisions = sa.Table(
    "trigger_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("model", sa.String(256)),
    sa.Column("alertname", sa.String(256)),
    sa.Column("alert_status", sa.String(16)),
    sa.Column("fingerprint", sa.String(128)),
    sa.Column("starts_at", sa.String(64)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(128)),
    sa.Column("labels", sa.Text, nullable=False, default="{}"),
)

runs = sa.Table(
    "trigger_runs",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("reason", sa.String(256), nullable=False),
    sa.Column("launcher", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("duration_s", sa.Float),
    sa.Column("pid", sa.Integer),
    sa.Column("external_id", sa.String(256)),
    sa.Column("outputs", sa.Text),
    sa.Column("error", sa.Text),
)


def alembic_config(connection: sa.Connection):  # noqa: ANN201 - alembic.config.Config
    """An Alembic config for the ledger's migrations, running on ``connection``."""
    return alembic_chain.alembic_config(MIGRATIONS_DIR, connection)


def migrate(url: str | sa.Engine, revision: str = "head") -> None:
    """Bring the ledger schema at ``url`` up to ``revision`` (the newest by default)."""
    alembic_chain.upgrade(MIGRATIONS_DIR, url, revision)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive; everything here is stored in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass
class Decision:
    outcome: str
    reason: str
    model: str | None = None
    alertname: str | None = None
    alert_status: str | None = None
    fingerprint: str | None = None
    starts_at: str | None = None
    run_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "reason": self.reason,
            "model": self.model,
            "alertname": self.alertname,
            "alert_status": self.alert_status,
            "fingerprint": self.fingerprint,
            "starts_at": self.starts_at,
            "run_id": self.run_id,
            "labels": self.labels,
        }


@dataclass
class RunRecord:
    run_id: str
    model: str
    reason: str
    launcher: str
    state: str
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float | None = None
    pid: int | None = None
    external_id: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model,
            "reason": self.reason,
            "launcher": self.launcher,
            "state": self.state,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
            "pid": self.pid,
            "external_id": self.external_id,
            "outputs": self.outputs,
            "error": self.error,
        }


class Ledger:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            from driftloop.security import private_dir, touch_private

            database = Path(url.removeprefix("sqlite:///"))
            private_dir(database.parent)
            touch_private(database)  # 0600 before SQLite creates it (its journals follow)
        self._engine = sa.create_engine(url)
        migrate(self._engine)

    @classmethod
    def at_home(cls, home: Path) -> Ledger:
        return cls(f"sqlite:///{Path(home) / 'trigger' / 'trigger.db'}")

    def dispose(self) -> None:
        self._engine.dispose()

    # --- dedupe ---------------------------------------------------------------
    def claim_alert(self, fingerprint: str, starts_at: str, run_id: str) -> bool:
        """Mark an alert instance as acted on; False when it already was."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    seen_alerts.insert().values(
                        fingerprint=fingerprint,
                        starts_at=starts_at,
                        run_id=run_id,
                        seen_at=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def seen_run(self, fingerprint: str, starts_at: str) -> str | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(seen_alerts.c.run_id).where(
                    seen_alerts.c.fingerprint == fingerprint, seen_alerts.c.starts_at == starts_at
                )
            ).first()
        return None if row is None else (row.run_id or "")

    # --- decisions ------------------------------------------------------------
    def record_decision(self, decision: Decision) -> Decision:
        with self._engine.begin() as conn:
            result = conn.execute(
                decisions.insert().values(
                    at=decision.at,
                    outcome=decision.outcome,
                    model=decision.model,
                    alertname=decision.alertname,
                    alert_status=decision.alert_status,
                    fingerprint=decision.fingerprint,
                    starts_at=decision.starts_at,
                    reason=decision.reason,
                    run_id=decision.run_id,
                    labels=json.dumps(decision.labels, sort_keys=True),
                )
            )
            decision.id = result.inserted_primary_key[0]
        return decision

    def decisions(self, model: str | None = None, limit: int = 100) -> list[Decision]:
        query = sa.select(decisions).order_by(decisions.c.id.desc()).limit(limit)
        if model:
            query = query.where(decisions.c.model == model)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Decision(
                id=row.id,
                at=_aware(row.at),
                outcome=row.outcome,
                reason=row.reason,
                model=row.model,
                alertname=row.alertname,
                alert_status=row.alert_status,
                fingerprint=row.fingerprint,
                starts_at=row.starts_at,
                run_id=row.run_id,
                labels=json.loads(row.labels or "{}"),
            )
            for row in rows
        ]

    # --- runs -----------------------------------------------------------------
    def add_run(self, run: RunRecord) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run.run_id,
                    model=run.model,
                    reason=run.reason,
                    launcher=run.launcher,
                    state=run.state,
                    started_at=run.started_at,
                    pid=run.pid,
                    external_id=run.external_id,
                )
            )

    def update_run(self, run_id: str, **values: Any) -> None:
        if "outputs" in values and values["outputs"] is not None:
            values["outputs"] = json.dumps(values["outputs"], default=str)
        with self._engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))

    def runs(
        self, model: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        if model:
            query = query.where(runs.c.model == model)
        if state:
            query = query.where(runs.c.state == state)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RunRecord(
                run_id=row.run_id,
                model=row.model,
                reason=row.reason,
                launcher=row.launcher,
                state=row.state,
                started_at=_aware(row.started_at),
                finished_at=_aware(row.finished_at),
                duration_s=row.duration_s,
                pid=row.pid,
                external_id=row.external_id,
                outputs=json.loads(row.outputs) if row.outputs else None,
                error=row.error,
            )
            for row in rows
        ]

    def last_launch(self, model: str) -> datetime | None:
        with self._engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(runs.c.started_at)).where(runs.c.model == model)
            ).scalar()
        return _aware(value)
