"""The flusher lingers with one sleep per batch; flush() and close() cut the sleep short."""

from __future__ import annotations

import time

from driftloop.store.writer import StoreWriter
from tests.unit.test_store import record, store  # noqa: F401 - the fixture


def test_rows_submitted_while_lingering_are_all_written(store):  # noqa: F811
    writer = StoreWriter(store, linger_s=0.5).start()
    for i in range(20):  # all inside one linger window
        writer.submit(record(f"r{i}"))
    time.sleep(1.5)
    assert store.count_predictions() == 20
    writer.close()


def test_flush_and_close_do_not_wait_for_the_linger(store):  # noqa: F811
    writer = StoreWriter(store, linger_s=30.0).start()
    writer.submit(record("first"))
    started = time.monotonic()
    assert writer.flush(timeout=10)
    assert store.get_prediction("first") is not None
    writer.submit(record("second"))
    writer.close(timeout=10)
    assert time.monotonic() - started < 5
    assert store.count_predictions() == 2
