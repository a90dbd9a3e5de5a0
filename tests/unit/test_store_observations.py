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


def test_an_observed_day_the_training_data_holds_gives_one_row(tmp_path, caplog):
    """Feedback rows are keyed by their date, like the training windows: the same close
    drops the copy, another close replaces the day's row (and says so)."""
    import pandas as pd

    from driftloop.datasets import write_frame
    from driftloop.training.data_steps import merge_feedback

    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    days = {"2017-01-03": 10.5, "2017-01-04": 11.0, "2017-01-05": 11.5}
    for n, (day, close) in enumerate(days.items()):
        # two requests forecast 01-04; 01-05 is observed at a close other than the data's
        observed = {"2017-01-05": 12.0}.get(day, close)
        for copy in range(2 if day == "2017-01-04" else 1):
            request_id = f"req-{n}-{copy}"
            store.insert_predictions([
                PredictionRecord(
                    request_id=request_id, model_name="msft-forecast", model_version="1",
                    inputs=[{"last_prices": [9.0 + n, 9.5 + n, 10.0 + n], "series": "msft",
                             "date": day}],
                    outputs=[{"predicted_price": 10.0, "last_price": 10.0}],
                    label=None, confidence=None, observation_keys=[("msft", day)],
                )
            ])  # fmt: skip
            store.add_feedback(request_id, value=observed)
    base = write_frame(
        pd.DataFrame(
            {
                "id": list(days),
                "date": list(days),
                "p_3": [9.0, 10.0, 11.0],
                "p_2": [9.5, 10.5, 11.5],
                "p_1": [10.0, 11.0, 12.0],
                "close": list(days.values()),
            }
        ),  # fmt: skip
        tmp_path / "base.parquet",
    )
    spec = '{"name": "forecast", "options": {"window": 3}}'
    with caplog.at_level("WARNING", logger="driftloop.training.data_steps"):
        summary = merge_feedback(base, tmp_path / "merged.parquet", spec, "msft-forecast",
                                 store.url)  # fmt: skip
    store.close()
    merged = pd.read_parquet(tmp_path / "merged.parquet")
    assert sorted(merged["date"]) == list(days)  # one row per day
    assert merged.set_index("date")["close"].to_dict() == {**days, "2017-01-05": 12.0}
    assert summary["feedback_rows"] == 4 and summary["rows_replaced"] == 1
    assert "replaced 1 training row(s)" in caplog.text and "2017-01-05" in caplog.text
