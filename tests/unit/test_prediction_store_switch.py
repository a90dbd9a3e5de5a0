"""DRIFTLOOP_PREDICTION_STORE=off: no database is opened and feedback answers 503."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from driftloop.blueprints.sentiment import SentimentBlueprint
from driftloop.serving import feedback, runtime
from driftloop.serving.loader import LoadedModel
from driftloop.serving.model import BlueprintModel
from driftloop.settings import Settings
from driftloop.store import PredictionRecord


def record(request_id: str) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        model_name="sentiment",
        model_version="1",
        inputs=["fine"],
        outputs=[{"label": "positive", "probabilities": {"negative": 0.2, "positive": 0.8}}],
        label="positive",
        confidence=0.8,
    )


def served_sentiment(settings: Settings) -> BlueprintModel:
    """A predictor model serving version 1 of a sentiment model (the version answered)."""
    blueprint = SentimentBlueprint()
    model = BlueprintModel("sentiment", "models:/sentiment/1", settings)
    model.swap(LoadedModel(None, blueprint, blueprint.codec(None), "1", "models:/sentiment/1"))
    return model


@pytest.fixture
def serving_runtime(request, home):
    settings = Settings(home=home, prediction_store=request.param)
    serving = runtime.install(settings).start([served_sentiment(settings)])
    app = FastAPI()
    app.include_router(feedback.router)
    try:
        yield serving, TestClient(app), home
    finally:
        runtime.close_current()


@pytest.mark.parametrize("serving_runtime", [False], indirect=True)
def test_with_the_store_off_nothing_is_opened_and_feedback_names_the_setting(serving_runtime):
    serving, client, home = serving_runtime
    serving.record(record("r-1"), {"instances": ["fine"]}, {"predictions": []})  # must not raise
    assert serving.store is None and serving.writer is None
    assert not (home / "store.db").exists()
    assert serving.find_prediction("r-1", wait_s=0) is None
    one = client.post("/v1/feedback/r-1", json={"label": "positive"})
    batch = client.post("/v1/feedback", json={"items": [{"request_id": "r-1", "correct": True}]})
    for answer in (one, batch):
        assert answer.status_code == 503
        assert "DRIFTLOOP_PREDICTION_STORE=off" in answer.json()["detail"]


@pytest.mark.parametrize("serving_runtime", [True], indirect=True)
def test_with_the_store_on_the_same_feedback_is_stored(serving_runtime):
    serving, client, home = serving_runtime
    serving.record(record("r-2"), {"instances": ["fine"]}, {"predictions": []})
    answer = client.post("/v1/feedback/r-2", json={"label": "negative"})
    assert answer.status_code == 200 and answer.json()["correct"] is False
    assert (home / "store.db").exists()


def test_the_setting_reads_on_and_off_and_names_itself_when_wrong(monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_PREDICTION_STORE", "off")
    assert Settings().prediction_store is False
    monkeypatch.setenv("DRIFTLOOP_PREDICTION_STORE", "on")
    assert Settings().prediction_store is True
    monkeypatch.setenv("DRIFTLOOP_PREDICTION_STORE", "sometimes")
    with pytest.raises(ValueError, match="prediction_store"):
        Settings()
