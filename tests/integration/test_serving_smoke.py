"""smoke_serve: this predictor in a subprocess on a registered version, and its failures."""

from __future__ import annotations

import pytest

from driftloop.serving.smoke import SmokeServeError, smoke_serve
from tests.integration.conftest_serving import register_text_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_smoke_serve_answers_and_fails_clearly(home):
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, "sentiment", alias=None)
    result = smoke_serve(f"models:/sentiment/{version}", ["great product", "awful"], timeout_s=120)
    assert result["ok"] is True
    assert result["model_version"] == version
    assert [p["label"] for p in result["predictions"]] == ["positive", "negative"]
    assert result["latency_ms"] > 0
    print(f"smoke v2 latency {result['latency_ms']:.1f} ms")
    # nothing of the smoke run leaks into the real prediction store
    assert not (home / "store.db").exists()

    with pytest.raises(SmokeServeError, match="cannot load"):
        smoke_serve("models:/sentiment/99", ["x"], timeout_s=120)
    with pytest.raises(SmokeServeError, match="no sample"):
        smoke_serve(f"models:/sentiment/{version}", [])
