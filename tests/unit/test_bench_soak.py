"""The soak's pure parts: HTTP answer parsing, knee choice, RSS windows and verdicts."""

from __future__ import annotations

import asyncio
import os

from bench.rest_load import build_request, percentile, read_response
from bench.soak import SoakRun, knee_of, tree_rss_mib


def _read(raw: bytes) -> tuple[tuple[int, bool], bytes]:
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        answer = await read_response(reader)
        return answer, await reader.read()

    return asyncio.run(go())


def test_request_carries_path_host_and_length():
    request = build_request("http://127.0.0.1:9/v2/models/m/infer?x=1", b'{"a": 1}')
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v2/models/m/infer?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9")
    assert b"Content-Length: 8" in head and body == b'{"a": 1}'


def test_responses_are_read_to_their_end_sized_or_chunked():
    sized = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloNEXT"
    assert _read(sized) == ((200, True), b"NEXT")
    chunked = (
        b"HTTP/1.1 413 Payload Too Large\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"
        b"\r\n3\r\nabc\r\n0\r\n\r\nNEXT"
    )
    assert _read(chunked) == ((413, False), b"NEXT")


def test_percentile_of_sorted_values():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) in (50.0, 51.0) and percentile(values, 99) == 99.0
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_knee_is_the_last_step_before_a_small_gain():
    ramp = [{"concurrency": c, "rps": r} for c, r in ((1, 100), (2, 180), (4, 190), (8, 195))]
    assert knee_of(ramp) == 2
    assert knee_of([{"concurrency": 1, "rps": 100}, {"concurrency": 2, "rps": 90}]) == 1
    still_gaining = [{"concurrency": 1, "rps": 100}, {"concurrency": 2, "rps": 150}]
    assert knee_of(still_gaining) == 2


def test_rss_windows_growth_and_verdicts():
    rss = [(float(t), 100.0 + (3.0 if t >= 50 else 0.0)) for t in range(60)]
    run = SoakRun(
        concurrency=2,
        seconds=60,
        load={"ok": 10, "errors": 0},
        rss=rss,
        rows_before=5,
        rows_after=15,
        window_seconds=10,
    )
    assert run.rss_windows() == (100.0, 103.0)
    assert abs(run.rss_growth - 0.03) < 1e-9
    assert all(run.verdicts().values())
    run.rows_after = 14
    run.rss = [(t, mib * (1.1 if t >= 50 else 1.0)) for t, mib in rss]
    verdicts = run.verdicts()
    assert not verdicts["rows == answered"] and not verdicts["RSS growth < 5%"]


def test_rss_of_this_process_is_positive():
    assert tree_rss_mib(os.getpid()) > 1
