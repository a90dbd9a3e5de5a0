"""Writes prediction rows off the request path.

``submit`` never blocks: rows go into a bounded queue that one flusher thread
drains in batches. A full queue drops the row and counts it
(``driftloop_store_dropped_total``) -- the prediction itself is still answered.
``close`` drains everything that was accepted before the process exits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from driftloop.serving import metrics
from driftloop.store.core import PredictionRecord, PredictionStore

log = logging.getLogger(__name__)

_STOP = object()


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
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.write_retries = write_retries
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
                try:
                    self.store.insert_predictions(chunk)
                    metrics.STORE_WRITTEN.inc(len(chunk))
                    break
                except Exception as exc:  # noqa: BLE001 - a DB error must not kill the flusher
                    if attempt == self.write_retries:
                        # one bad row (e.g. a duplicate request id) must not sink its batch
                        self._write_one_by_one(chunk, exc)
                    else:
                        time.sleep(0.1 * 2**attempt)

    def _write_one_by_one(self, chunk: list[PredictionRecord], exc: Exception) -> None:
        log.warning("batch insert of %d predictions failed (%s); writing singly", len(chunk), exc)
        for record in chunk:
            try:
                self.store.insert_predictions([record])
                metrics.STORE_WRITTEN.inc()
            except Exception as single_exc:  # noqa: BLE001
                log.error("dropping prediction %s: %s", record.request_id, single_exc)
                metrics.STORE_DROPPED.inc()
