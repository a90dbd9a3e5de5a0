"""A PostgreSQL outage loses no accepted prediction row: the writer holds and retries.

The test database cannot be stopped (it is shared), so the writer talks to it through
a TCP proxy on loopback that the test cuts -- existing connections reset, new ones
refused -- for 20 s while 8 threads keep submitting rows, then restores.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import sqlalchemy as sa

from driftloop.serving import metrics
from driftloop.store import PredictionStore
from driftloop.store.writer import StoreWriter
from tests.conftest import free_port
from tests.unit.test_store import record

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` resets every connection and
    stops listening (connection refused), ``restore()`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader, writer) -> None:  # noqa: ANN001
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer) -> None:  # noqa: ANN001
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer)
        )
        self._writers -= {client_writer, upstream_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST: what a dead server or a dropped link looks like
        self._writers.clear()

    def restore(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def test_a_20s_outage_loses_no_row_under_8_concurrent_writers(postgres_url):
    url = sa.make_url(postgres_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.restore()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    store = PredictionStore(proxied)
    writer = StoreWriter(store, queue_size=10_000).start()
    dropped_before = metrics.STORE_DROPPED._value.get()
    submitted: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(k: int) -> None:
        i = 0
        while not stop.is_set():
            request_id = f"w{k}-{i}"
            accepted = writer.submit(record(request_id))
            with lock:
                (submitted if accepted else refused).append(request_id)
            i += 1
            time.sleep(0.04)  # ~25 rows/s per writer, ~200 rows/s in all

    direct = PredictionStore(postgres_url, run_migrations=False)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(3)
        proxy.cut()
        cut_at = time.monotonic()
        stored_at_cut = direct.count_predictions()
        time.sleep(20)
        stored_in_outage = direct.count_predictions() - stored_at_cut
        with lock:
            submitted_in_outage = len(submitted)
        proxy.restore()
        restored_at = time.monotonic()
        while (
            direct.count_predictions() < submitted_in_outage and time.monotonic() < restored_at + 30
        ):
            time.sleep(0.05)
        caught_up_s = time.monotonic() - restored_at  # the held rows are all written
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join()
        # every row submitted before the proxy came back, and after, is in the database
        deadline = time.monotonic() + 30
        while direct.count_predictions() < len(submitted) and time.monotonic() < deadline:
            time.sleep(0.2)
        writer.close()
        with direct.engine.connect() as conn:
            stored = {row[0] for row in conn.execute(sa.text("select request_id from predictions"))}
    finally:
        stop.set()
        writer.close()
        store.close()
        direct.close()
        proxy.close()
    lost = set(submitted) - stored
    print(
        f"outage {restored_at - cut_at:.1f}s: submitted {len(submitted)} "
        f"({submitted_in_outage} by the restore), stored {len(stored)}, lost {len(lost)}, "
        f"refused {len(refused)}, written during the cut {stored_in_outage}, "
        f"held rows written {caught_up_s:.1f}s after the restore"
    )
    assert stored_in_outage <= writer.batch_size  # the cut really stopped the writes
    assert refused == []
    assert lost == set()
    assert stored == set(submitted)
    assert metrics.STORE_DROPPED._value.get() == dropped_before
