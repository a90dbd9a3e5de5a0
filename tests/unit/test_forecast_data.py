"""Price series for the forecast blueprint: pmdarima's MSFT and any CSV, with named errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.forecast.windows import price_columns, window_frame
from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.prices import price_frame, read_price_csv, shipped_series


def ohlcv(days: int = 80) -> pd.DataFrame:
    dates = pd.bdate_range("2024-01-01", periods=days)  # trading days: weekends skipped
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, days)))
    return pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Open": close, "High": close,
                         "Low": close, "Close": close, "Volume": 1000})  # fmt: skip


def test_msft_is_a_checked_daily_series():
    series = shipped_series("msft")
    assert list(series.columns) == ["date", "close"]
    assert len(series) > 7000
    assert series["date"].is_monotonic_increasing and series["date"].is_unique
    assert (series["close"] > 0).all()


def test_an_ohlcv_csv_works_as_it_is(tmp_path):
    path = tmp_path / "prices.csv"
    ohlcv().to_csv(path, index=False)
    series = read_price_csv(path)
    assert len(series) == 80 and series["date"].iloc[0] == "2024-01-01"
    named = read_price_csv(path, date_column="Date", value_column="Open")
    assert np.allclose(named["close"], series["close"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: f.assign(Date=f["Date"].where(f.index != 5, f["Date"][4])), "repeat"),
        (lambda f: f.iloc[[0, 2, 1, *range(3, len(f))]], "not in order"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 7, np.nan)), "no price"),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 9, -1.0)), "zero or negative"),
        (lambda f: f.assign(Date=f["Date"].where(f.index != 3, "not a day")), "not dates"),
    ],
)
def test_bad_series_are_one_named_error(change, named):
    with pytest.raises(DatasetValidationError, match=named) as error:
        price_frame(change(ohlcv()).reset_index(drop=True))
    assert "--date-column" in str(error.value) or "--value-column" in str(error.value)


def test_a_missing_column_is_named():
    with pytest.raises(DatasetValidationError, match="--value-column: no column 'Price'"):
        price_frame(ohlcv(), value_column="Price")


def test_windows_are_the_previous_closes_and_the_days_close():
    series = price_frame(ohlcv(70))
    frame = window_frame(series, 60)
    assert len(frame) == 10
    first = frame.iloc[0]
    assert first["id"] == series["date"][60]
    assert np.allclose(first[price_columns(60)].to_numpy(float), series["close"][:60])
    assert first["close"] == series["close"][60]


def test_the_blueprint_loads_a_csv_and_validates_it(tmp_path):
    path = tmp_path / "prices.csv"
    ohlcv(100).to_csv(path, index=False)
    # too short for the default 250 test + 250 validation days: refused before a run
    with pytest.raises(ValueError, match="has 100 days; .* need 561 .*--param test_days"):
        get_blueprint("forecast", window=20).prepare(None, str(path))
    # long enough for shorter periods, none given: a third of the days each, said so
    longer = tmp_path / "longer.csv"
    ohlcv(400).to_csv(longer, index=False)
    shortened, _, note = get_blueprint("forecast", window=20).prepare(None, str(longer))
    assert (shortened.test_days, shortened.val_days) == (113, 113) and "113 each" in note
    blueprint = get_blueprint("forecast", window=20, test_days=10, val_days=10)
    _, dataset, _ = blueprint.prepare(None, str(path))
    frame = blueprint.load(dataset, str(path))
    assert blueprint.validate(frame)["rows"] == 80
    broken = frame.assign(close=frame["close"].where(frame.index != 3, 0.0))
    with pytest.raises(DatasetValidationError, match="1 of 80 rows"):
        blueprint.validate(broken)


def test_the_bench_names_a_bad_column_in_one_line(tmp_path, capsys):
    from driftloop.blueprints.forecast.bench import main

    path = tmp_path / "prices.csv"
    ohlcv(400).to_csv(path, index=False)
    assert main(["--data", str(path), "--value-column", "Price"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [error[0]] and "--value-column: no column 'Price'" in error[0]
