"""The trigger ledger's own Alembic chain: applied on open, upgrades a pre-chain database in
place, and shares a database with the prediction store (separate version tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from driftloop.store import PredictionStore
from driftloop.trigger import ledger as ledger_module
from driftloop.trigger.ledger import VERSION_TABLE, Decision, Ledger, RunRecord

TABLES = {"trigger_seen_alerts", "trigger_decisions", "trigger_runs"}
STARTED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _ledger_revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select version_num from {VERSION_TABLE}")).scalar_one()


def _pre_chain_ledger(url: str) -> None:
    """A ledger database as the code before the chain made it: ``create_all``, no version
    table, rows written through the Ledger's own methods."""
    engine = sa.create_engine(url)
    ledger_module.metadata.create_all(engine)
    old = Ledger.__new__(Ledger)  # the old __init__ was create_engine + create_all
    old._engine = engine
    assert old.claim_alert("fp-1", "2026-11-30T08:00:00Z", "run-1")
    old.record_decision(
        Decision(
            outcome="launched",
            reason="drift on sentiment",
            model="sentiment",
            alertname="DataDrift",
            alert_status="firing",
            fingerprint="fp-1",
            starts_at="2026-11-30T08:00:00Z",
            run_id="run-1",
            labels={"model": "sentiment", "severity": "warning"},
            at=STARTED,
        )
    )
    old.record_decision(Decision(outcome="deduplicated", reason="seen", model="sentiment"))
    old.add_run(
        RunRecord(
            run_id="run-1",
            model="sentiment",
            reason="DataDrift",
            launcher="local",
            state="running",
            started_at=STARTED,
            pid=4242,
        )
    )
    old.update_run(
        "run-1",
        state="succeeded",
        finished_at=STARTED + timedelta(minutes=3),
        duration_s=180.0,
        outputs={"promoted": True, "version": "3"},
    )
    engine.dispose()


def test_pre_chain_ledger_is_upgraded_in_place_with_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'trigger' / 'trigger.db'}"
    (tmp_path / "trigger").mkdir()
    _pre_chain_ledger(url)
    engine = sa.create_engine(url)
    assert VERSION_TABLE not in sa.inspect(engine).get_table_names()

    ledger = Ledger(url)
    try:
        assert _ledger_revision(engine) == "ledger_0001"
        assert TABLES <= set(sa.inspect(engine).get_table_names())
        # every row is still there, and the dedupe still remembers the alert
        assert ledger.seen_run("fp-1", "2026-11-30T08:00:00Z") == "run-1"
        assert not ledger.claim_alert("fp-1", "2026-11-30T08:00:00Z", "run-2")
        decisions = ledger.decisions()
        assert [d.outcome for d in decisions] == ["deduplicated", "launched"]
        launched = decisions[1]
        assert launched.at == STARTED and launched.run_id == "run-1"
        assert launched.labels == {"model": "sentiment", "severity": "warning"}
        [run] = ledger.runs()
        assert (run.state, run.pid, run.duration_s) == ("succeeded", 4242, 180.0)
        assert run.outputs == {"promoted": True, "version": "3"}
        assert run.finished_at == STARTED + timedelta(minutes=3)
        assert ledger.last_launch("sentiment") == STARTED
        # and it keeps working
        assert ledger.claim_alert("fp-2", "2026-11-30T09:00:00Z", "run-2")
    finally:
        ledger.dispose()
    Ledger(url).dispose()  # opening again is a no-op upgrade
    assert _ledger_revision(engine) == "ledger_0001"
    engine.dispose()


def test_fresh_ledger_is_created_by_the_chain_and_downgrades(tmp_path):
    ledger = Ledger.at_home(tmp_path)
    ledger.dispose()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'trigger' / 'trigger.db'}")
    assert TABLES | {VERSION_TABLE} <= set(sa.inspect(engine).get_table_names())
    assert "alembic_version" not in sa.inspect(engine).get_table_names()
    assert _ledger_revision(engine) == "ledger_0001"
    with engine.begin() as conn:
        command.downgrade(ledger_module.alembic_config(conn), "base")
    assert not TABLES & set(sa.inspect(engine).get_table_names())
    engine.dispose()


def _share_one_database(url: str) -> None:
    store = PredictionStore(url)
    ledger = Ledger(url)
    try:
        assert ledger.claim_alert("fp", "t", "run")
        with store.engine.connect() as conn:
            store_revision = conn.execute(sa.text("select version_num from alembic_version"))
            assert store_revision.scalar_one() == "0003"
        assert _ledger_revision(store.engine) == "ledger_0001"
        names = set(sa.inspect(store.engine).get_table_names())
        assert {"predictions", "feedback", "alembic_version", VERSION_TABLE} | TABLES <= names
    finally:
        ledger.dispose()
        store.close()
    # reopening either runs its own chain only: nothing to do, nothing lost
    PredictionStore(url).close()
    ledger = Ledger(url)
    try:
        assert ledger.seen_run("fp", "t") == "run"
    finally:
        ledger.dispose()


def test_ledger_and_store_share_a_sqlite_database(tmp_path):
    _share_one_database(f"sqlite:///{tmp_path / 'shared.db'}")


@pytest.mark.postgres
def test_ledger_and_store_share_a_postgres_database(postgres_url):
    _share_one_database(postgres_url)
