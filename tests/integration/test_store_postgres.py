"""The prediction store on PostgreSQL: migrations, feedback queries, and a real predictor whose
every answered prediction is in the log after a graceful shutdown -- with a dead payload sink."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from driftloop.store import PredictionStore
from tests.conftest import free_port
from tests.integration.conftest_serving import register_text_model, running_predictor, v2_body
from tests.unit.test_store import record

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_store_queries_on_postgres(postgres_url):
    store = PredictionStore(postgres_url)
    try:
        with store.engine.connect() as conn:
            assert (
                conn.execute(sa.text("select version_num from alembic_version")).scalar() == "0003"
            )
        old = datetime.now(UTC) - timedelta(days=45)
        store.insert_predictions(
            [record("a"), record("b", version="2"), record("old", created_at=old)]
        )
        store.add_feedback("a", label="negative", correct=False)
        store.add_feedback("a", label="positive", correct=True)
        store.add_feedback("b", label="negative", correct=False)
        assert store.get_prediction("a").created_at.tzinfo is not None
        truths = {pair.request_id: pair.value for pair in store.feedback_pairs("sentiment")}
        assert truths == {"a": "positive", "b": "negative"}
        stats = store.feedback_stats("sentiment", version="2")
        assert (stats.count, stats.correct, stats.accuracy) == (1, 0, 0.0)
        assert store.delete_older_than(30) == 1
        assert store.count_predictions() == 2
    finally:
        store.close()


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
def test_every_answered_prediction_is_logged_with_a_dead_payload_sink(home, postgres_url):
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    register_text_model(tracking, "sentiment")
    env = {
        "DRIFTLOOP_STORE_URL": postgres_url,
        "DRIFTLOOP_LOGGER_URL": f"http://127.0.0.1:{free_port()}/",  # nobody listens
        "DRIFTLOOP_LOGGER_QUEUE_SIZE": "4",
        "DRIFTLOOP_LOGGER_MAX_RETRIES": "1",
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    answered = 0
    with running_predictor("sentiment", home, env=env) as predictor:
        with httpx.Client(base_url=predictor.url, timeout=10) as http:
            for i in range(150):
                body = v2_body([f"great product number {i}"]) if i % 2 else None
                response = (
                    http.post("/v2/models/sentiment/infer", json=body)
                    if body
                    else http.post("/v1/models/sentiment:predict", json={"instances": [f"bad {i}"]})
                )
                assert response.status_code == 200, response.text
                answered += 1
            text = http.get("/metrics").text
        assert metric(text, "driftloop_logger_events_total", '{outcome="dropped"}') > 0
        assert metric(text, "driftloop_logger_events_total", '{outcome="sent"}') == 0
        assert predictor.stop() == 0

    store = PredictionStore(postgres_url)
    try:
        assert store.count_predictions("sentiment") == answered == 150
    finally:
        store.close()
