"""A short soak of a real predictor with the bench's soak code (bench/soak.py).

~12 s of REST v2 load at 4 connections against ``driftloop serve`` with its SQLite
prediction store: 0 errors, and every 2xx answer is a row in the store once the
writer has flushed. The predictor's RSS is sampled and reported, not asserted
(a window this short says nothing about growth; ``make bench-soak`` does).
"""

from __future__ import annotations

import json

import pytest
from bench.soak import soak

from tests.integration.conftest_serving import register_text_model, running_predictor, v2_body

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECONDS = 12.0
CONNECTIONS = 4


def test_mini_soak_answers_every_request_and_stores_a_row_for_each(tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_text_model(tracking, "sentiment")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        "DRIFTLOOP_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_STORE_URL": store_url,
        "OMP_NUM_THREADS": "1",
    }
    with running_predictor("sentiment", tmp_path, env=env, extra_args=("--no-grpc",)) as predictor:
        result = soak(
            f"{predictor.url}/v2/models/sentiment/infer",
            json.dumps(v2_body(["great product, works perfectly"])).encode(),
            pid=predictor.process.pid,
            store_url=store_url,
            model_name="sentiment",
            concurrency=CONNECTIONS,
            seconds=SECONDS,
            sample_seconds=1.0,
            window_seconds=5.0,
        )
    first, last = result.rss_windows()
    print(
        f"mini-soak {SECONDS:.0f} s at {CONNECTIONS} conns: {result.answered} answered "
        f"({result.load['rps']:.0f} req/s, p99 {result.load['p99_ms']:.0f} ms), "
        f"{result.errors} errors, {result.rows} rows; RSS {first:.1f} -> {last:.1f} MiB "
        f"({result.rss_growth:+.2%})"
    )
    assert result.answered > 0
    assert result.errors == 0, (result.load["non_2xx"], result.load["transport_errors"])
    assert result.rows == result.answered
    assert len(result.rss) >= SECONDS / 2
