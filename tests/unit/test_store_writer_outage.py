"""The writer holds rows through a database outage; drops (counted) only at the queue
bound or when close() finds the database still down at its deadline."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from driftloop.serving import metrics
from driftloop.store.writer import StoreWriter, is_outage
from tests.unit.test_store import record, store  # noqa: F401 - the fixture


class FlakyStore:
    """Wraps a store; raises a connection-level error while ``down`` is set."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner
        self.down = threading.Event()
        self.attempts = 0

    def insert_predictions(self, records) -> int:  # noqa: ANN001
        self.attempts += 1
        if self.down.is_set():
            raise sa.exc.OperationalError("insert", {}, ConnectionRefusedError("refused"))
        return self.inner.insert_predictions(records)


def dropped() -> float:
    return metrics.STORE_DROPPED._value.get()


def test_outage_errors_are_told_from_bad_rows():
    assert is_outage(sa.exc.OperationalError("x", {}, OSError("connection refused")))
    assert is_outage(sa.exc.InterfaceError("x", {}, OSError("connection closed")))
    assert not is_outage(sa.exc.IntegrityError("x", {}, ValueError("duplicate key")))
    assert not is_outage(TypeError("not JSON serializable"))


def test_rows_are_held_through_an_outage_and_written_when_it_ends(store):  # noqa: F811
    flaky = FlakyStore(store)
    writer = StoreWriter(flaky, outage_backoff_max_s=0.2, linger_s=0.01).start()
    before = dropped()
    flaky.down.set()
    for i in range(300):
        assert writer.submit(record(f"r{i}"))
    time.sleep(1.5)  # far longer than the old 3 retries (~0.6 s)
    assert store.count_predictions() == 0 and flaky.attempts > 3
    flaky.down.clear()
    assert writer.flush(timeout=10)
    assert store.count_predictions() == 300
    writer.close()
    assert dropped() == before


def test_only_the_queue_bound_drops_during_an_outage(store):  # noqa: F811
    flaky = FlakyStore(store)
    writer = StoreWriter(
        flaky, queue_size=50, batch_size=10, outage_backoff_max_s=0.1, linger_s=0.01
    ).start()
    before = dropped()
    flaky.down.set()
    writer.submit(record("first"))
    time.sleep(0.3)  # the flusher holds "first" and waits out the outage
    accepted = [writer.submit(record(f"q{i}")) for i in range(80)]
    assert accepted.count(True) == 50 and dropped() - before == 30
    flaky.down.clear()
    writer.close(timeout=10)
    assert store.count_predictions() == 51
    assert dropped() - before == 30


def test_close_gives_up_at_its_deadline_when_the_database_stays_down(store):  # noqa: F811
    flaky = FlakyStore(store)
    writer = StoreWriter(flaky, outage_backoff_max_s=0.2, linger_s=0.01).start()
    before = dropped()
    flaky.down.set()
    for i in range(20):
        writer.submit(record(f"c{i}"))
    started = time.monotonic()
    writer.close(timeout=2.0)
    assert time.monotonic() - started < 3.0
    assert dropped() - before == 20
    assert store.count_predictions() == 0


def test_close_writes_held_rows_when_the_database_returns_in_time(store):  # noqa: F811
    flaky = FlakyStore(store)
    writer = StoreWriter(flaky, outage_backoff_max_s=0.2, linger_s=0.01).start()
    flaky.down.set()
    for i in range(20):
        writer.submit(record(f"d{i}"))
    threading.Timer(1.0, flaky.down.clear).start()
    writer.close(timeout=10.0)
    assert store.count_predictions() == 20
