"""Writes prediction rows off the request path.

``submit`` never blocks: rows go into a bounded queue that one flusher thread
drains in batches. A full queue drops the row and counts it
(``driftloop_store_dropped_total``, alerted by ``DriftloopStoreDropping``) -- the
prediction itself is still answered.

A database outage does not lose rows: while the store is unreachable (a
connection-level error), the flusher holds its batch and retries it with capped
exponential backoff for as long as the outage lasts, and the bounded queue keeps
taking new rows; when the database returns, the held batch and the queue are
written. Rows are dropped only when the queue bound is hit, or at ``close`` when
the database is still down at the close deadline. Other errors (a duplicate
request id, a value the database refuses) are retried ``write_retries`` times,
then the batch is written row by row so that one bad row does not sink the rest.

``close`` drains everything that was accepted before the process exits. A row
accepted in the last linger window (``linger_s``, 50 ms by default) is still
only in memory: SIGKILL loses it, SIGTERM does not.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import sqlalchemy as sa

from driftloop.serving import metrics
from driftloop.store.core import PredictionRecord, PredictionStore

log = logging.getLogger(__name__)

_STOP = object()
_GAVE_UP = object()

# Errors that say "the database is not there right now", not "this row is wrong".
_OUTAGE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # the connection pool timed out
    ConnectionError,
    TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable (retry later), not a bad row."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _OUTAGE_ERRORS)


class _FlushMarker:
    def __init__(self) -> None:
        self.done = threading.Event()


class StoreWriter:
    def __init__(
        self,
        store: PredictionStore,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        linger_s: float = 0.05,
        write_retries: int = 3,
        outage_backoff_s: float = 0.1,
        outage_backoff_max_s: float = 2.0,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.write_retries = write_retries
        self.outage_backoff_s = outage_backoff_s
        self.outage_backoff_max_s = outage_backoff_max_s
        self._give_up_at: float | None = None  # set by close(): stop holding rows then
        self._retry_now = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def start(self) -> StoreWriter:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="driftloop-store-writer", daemon=True
                )
                self._thread.start()
        return self

    def submit(self, record: PredictionRecord) -> bool:
        """Queue ``record`` for writing; False (and counted) when it had to be dropped."""
        if self._closed:
            metrics.STORE_DROPPED.inc()
            return False
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            metrics.STORE_DROPPED.inc()
            return False
        metrics.STORE_QUEUE_DEPTH.set(self._queue.qsize())
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every row submitted before this call is written (or ``timeout``)."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        marker = _FlushMarker()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting rows, write all queued ones, stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            # an outage still going on at the deadline: drop (and count) what is left
            self._give_up_at = time.monotonic() + max(0.0, timeout - 1.0)
        self._retry_now.set()  # a flusher waiting out an outage tries again now
        if thread is None:
            self._write(self._drain_all())
            return
        self._queue.put(_STOP)  # unbounded wait is fine: the flusher is draining
        self._wake.set()
        thread.join(timeout)

    def _drain_all(self) -> list[PredictionRecord]:
        records = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return records
            if isinstance(item, PredictionRecord):
                records.append(item)
            elif isinstance(item, _FlushMarker):
                item.done.set()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[PredictionRecord] = []
            markers: list[_FlushMarker] = []
            item = self._queue.get()
            if isinstance(item, PredictionRecord) and self._queue.qsize() + 1 < self.batch_size:
                # One sleep, not a get() per row: every wake-up of this thread takes the
                # GIL from inference. flush() and close() cut the sleep short.
                self._wake.wait(self.linger_s)
            self._wake.clear()
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _FlushMarker):
                    markers.append(item)
                else:
                    batch.append(item)
                if stopping or len(batch) >= self.batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if stopping:
                batch.extend(self._drain_all())
            self._write(batch)
            metrics.STORE_QUEUE_DEPTH.set(self._queue.qsize())
            for marker in markers:
                marker.done.set()

    def _write(self, batch: list[PredictionRecord]) -> None:
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start : start + self.batch_size]
            for attempt in range(1, self.write_retries + 1):
                outcome = self._insert_through_outage(chunk)
                if outcome is None or outcome is _GAVE_UP:
                    break
                if attempt == self.write_retries:
                    # one bad row (e.g. a duplicate request id) must not sink its batch
                    self._write_one_by_one(chunk, outcome)
                else:
                    time.sleep(0.1 * 2**attempt)

    def _insert_through_outage(self, chunk: list[PredictionRecord]) -> object:
        """Insert ``chunk``, waiting out a database outage however long it lasts.

        None when written; ``_GAVE_UP`` when ``close``'s deadline passed during an
        outage (the rows are counted as dropped); else the (non-outage) exception.
        """
        delay = self.outage_backoff_s
        down_since: float | None = None
        while True:
            try:
                self.store.insert_predictions(chunk)
            except Exception as exc:  # noqa: BLE001 - a DB error must not kill the flusher
                if not is_outage(exc):
                    return exc
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    log.warning(
                        "prediction store unreachable (%s); holding %d rows (+%d queued) "
                        "and retrying",
                        _short(exc),
                        len(chunk),
                        self._queue.qsize(),
                    )
                if self._give_up_at is not None and now >= self._give_up_at:
                    log.error(
                        "closing with the prediction store still unreachable after %.1fs: "
                        "dropping %d predictions",
                        now - down_since,
                        len(chunk),
                    )
                    metrics.STORE_DROPPED.inc(len(chunk))
                    return _GAVE_UP
                wait = delay
                if self._give_up_at is not None:
                    wait = min(wait, max(0.0, self._give_up_at - now))
                if self._retry_now.wait(wait):
                    self._retry_now.clear()  # close() asked for one retry now, not a spin
                delay = min(delay * 2, self.outage_backoff_max_s)
                continue
            metrics.STORE_WRITTEN.inc(len(chunk))
            if down_since is not None:
                log.warning(
                    "prediction store reachable again after %.1fs; writing held rows",
                    time.monotonic() - down_since,
                )
            return None

    def _write_one_by_one(self, chunk: list[PredictionRecord], exc: Exception) -> None:
        log.warning("batch insert of %d predictions failed (%s); writing singly", len(chunk), exc)
        for record in chunk:
            outcome = self._insert_through_outage([record])
            if outcome is None or outcome is _GAVE_UP:
                continue
            log.error("dropping prediction %s: %s", record.request_id, outcome)
            metrics.STORE_DROPPED.inc()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
