"""Store revision 0003: predictions that name what they forecast (series, target day) are
found by the observation of that day, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from driftloop.store import PredictionRecord, PredictionStore
from driftloop.store.schema import observation_keys


def record(request_id: str, keys: list, n: int = 1) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        model_name="msft-forecast",
        model_version="1",
        inputs=[{"last_prices": [1.0, 2.0]}] * n,
        outputs=[{"predicted_price": 2.0, "last_price": 2.0}] * n,
        label=None,
        confidence=None,
        observation_keys=keys,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = PredictionStore(url)
    yield opened
    opened.close()


def test_predictions_are_found_by_series_and_day(store):
    store.insert_predictions([
        record("a", [("msft", "2008-10-13")]),
        record("b", [("msft", "2008-10-14"), None, ("msft", "2008-10-13")], n=3),
        record("c", []),  # named nothing: no key rows
        record("d", [("aapl", "2008-10-13")]),
    ])  # fmt: skip
    found = store.predictions_observing([("msft", "2008-10-13")])
    assert [(f.prediction.request_id, f.instance) for f in found] == [("a", 0), ("b", 2)]
    assert found[1].prediction.outputs[2]["predicted_price"] == 2.0
    assert store.predictions_observing([("msft", "2009-01-02")]) == []
    store.add_feedback("b", value=[None, None, 21.0])
    store.add_feedback("b", value=[20.0, None, 21.0])
    assert store.current_feedback_values(["a", "b"]) == {"b": [20.0, None, 21.0]}


def test_keys_go_with_their_prediction(store):
    from datetime import UTC, datetime, timedelta

    old = PredictionRecord(
        request_id="old", model_name="m", model_version="1", inputs=[{}], outputs=[{}],
        label=None, confidence=None, created_at=datetime.now(UTC) - timedelta(days=10),
        observation_keys=[("msft", "2008-10-13")],
    )  # fmt: skip
    store.insert_predictions([old, record("new", [("msft", "2008-10-13")])])
    assert store.delete_older_than(5) == 1
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(observation_keys.c.request_id)).scalars().all()
    assert left == ["new"]


def test_a_day_not_observed_yet_makes_no_training_row(tmp_path):
    import pandas as pd

    from driftloop.datasets import write_frame
    from driftloop.training.data_steps import merge_feedback

    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    windows = [{"last_prices": [10.0, 11.0, 12.0]}, {"last_prices": [11.0, 12.0, 13.0]}]
    store.insert_predictions([
        PredictionRecord(
            request_id="two-days", model_name="msft-forecast", model_version="1",
            inputs=windows, outputs=[{"predicted_price": 12.0, "last_price": 12.0},
                                     {"predicted_price": 13.0, "last_price": 13.0}],
            label=None, confidence=None,
        )
    ])  # fmt: skip
    store.add_feedback("two-days", value=[None, 13.5])  # the first day is not observed yet
    base = write_frame(
        pd.DataFrame(
            {
                "id": ["2017-01-03"],
                "date": ["2017-01-03"],
                "p_3": [9.0],
                "p_2": [9.5],
                "p_1": [10.0],
                "close": [10.5],
            }
        ),  # fmt: skip
        tmp_path / "base.parquet",
    )
    spec = '{"name": "forecast", "options": {"window": 3}}'
    summary = merge_feedback(base, tmp_path / "merged.parquet", spec, "msft-forecast", store.url)
    merged = pd.read_parquet(tmp_path / "merged.parquet").set_index("id")
    assert summary["feedback_rows"] == 1
    assert merged.loc["two-days:1", ["p_3", "p_2", "p_1", "close"]].tolist() == [11, 12, 13, 13.5]
    store.close()
