"""Daily price series: a shipped one (pmdarima's MSFT, arch's S&P 500) or any CSV with a date
and a value column.

A series comes back as a frame ``date`` (ISO text, ascending) and ``close`` (float), one
row per trading day. Trading-day gaps (weekends, holidays) are kept as they are: the
forecast steps are trading days, not calendar days. Problems a user can fix are one
``DatasetValidationError`` line naming the option or column, a count and an example:
unparsable, repeated or out-of-order dates, missing, non-numeric or non-positive prices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.datasets.errors import DatasetValidationError, UnknownDatasetError

DATE, CLOSE = "date", "close"
# shipped series: name -> (loader description); data from installed packages, never downloaded
SHIPPED = {
    "msft": "Microsoft daily OHLCV 1986-2017 (pmdarima.datasets.load_msft)",
    "sp500": "S&P 500 index daily OHLCV 1999-2018, adjusted close (arch.data.sp500)",
}
# columns a CSV's dates / prices are found under when --date-column / --value-column are not given
DATE_GUESSES = ("date", "Date", "DATE", "timestamp", "Timestamp", "time", "Datetime")
VALUE_GUESSES = ("close", "Close", "CLOSE", "adj_close", "Adj Close", "adjclose", "price", "value")


def shipped_series(name: str) -> pd.DataFrame:
    """A shipped series by name, as ``date``/``close``."""
    if name == "msft":
        from pmdarima.datasets import load_msft

        raw = load_msft()
        return price_frame(raw, date_column="Date", value_column="Close", what="msft")
    if name == "sp500":
        from arch.data.sp500 import load as load_sp500

        raw = load_sp500().reset_index()
        return price_frame(raw, date_column="Date", value_column="Adj Close", what="sp500")
    raise UnknownDatasetError(
        f"--dataset: unknown price series {name!r} (shipped: {', '.join(SHIPPED)}; "
        "or give --data FILE.csv)"
    )


def read_price_csv(
    path: str | Path, date_column: str | None = None, value_column: str | None = None
) -> pd.DataFrame:
    """A CSV's series (OHLCV files work as they are: ``Date`` and ``Close`` are found)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetValidationError(f"--data: no such file {path}")
    try:
        raw = pd.read_csv(path, sep=None, engine="python")
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetValidationError(f"--data: {path} is not a readable CSV: {exc}") from None
    return price_frame(raw, date_column=date_column, value_column=value_column, what=str(path))


def _column(raw: pd.DataFrame, given: str | None, guesses: tuple[str, ...], option: str) -> str:
    from driftloop.datasets.tables import no_such_column

    if given is not None:
        if given not in raw.columns:
            raise DatasetValidationError(no_such_column(option, given, raw.columns))
        return given
    found = [c for c in guesses if c in raw.columns]
    if not found:
        raise DatasetValidationError(
            f"{option}: name the column (none of {', '.join(guesses[:3])}, ... found; "
            f"columns are {', '.join(map(str, raw.columns))})"
        )
    return found[0]


def price_frame(
    raw: pd.DataFrame,
    *,
    date_column: str | None = None,
    value_column: str | None = None,
    what: str = "series",
) -> pd.DataFrame:
    """``date``/``close`` from a raw table, checked (see the module docstring)."""
    date_name = _column(raw, date_column, DATE_GUESSES, "--date-column")
    value_name = _column(raw, value_column, VALUE_GUESSES, "--value-column")
    dates = pd.to_datetime(raw[date_name], errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        example = raw[date_name][bad].iloc[0]
        raise DatasetValidationError(
            f"--date-column {date_name!r}: {int(bad.sum())} of {len(raw)} rows are not dates "
            f"(e.g. {example!r}) in {what}",
            {date_name: f"{int(bad.sum())} rows not dates"},
        )
    repeated = dates[dates.duplicated()]
    if len(repeated):
        raise DatasetValidationError(
            f"--date-column {date_name!r}: {len(repeated)} date(s) repeat (e.g. "
            f"{repeated.iloc[0]:%Y-%m-%d}) in {what}; a daily series needs one row per day",
            {date_name: f"{len(repeated)} repeated"},
        )
    steps = np.diff(dates.to_numpy().astype("datetime64[ns]").astype(np.int64))
    if (steps < 0).any():
        row = int(np.argmax(steps < 0)) + 1
        raise DatasetValidationError(
            f"--date-column {date_name!r}: dates are not in order (row {row + 1}, "
            f"{dates.iloc[row]:%Y-%m-%d}, comes after {dates.iloc[row - 1]:%Y-%m-%d}) in {what}; "
            "sort the file by date",
            {date_name: "not ascending"},
        )
    values = pd.to_numeric(raw[value_name], errors="coerce").astype(float)
    missing = ~np.isfinite(values)
    if missing.any():
        example = raw[value_name][missing].iloc[0]
        raise DatasetValidationError(
            f"--value-column {value_name!r}: {int(missing.sum())} of {len(raw)} rows have no "
            f"price (e.g. {example!r} on {dates[missing].iloc[0]:%Y-%m-%d}) in {what}; "
            "drop or fill those days",
            {value_name: f"{int(missing.sum())} rows missing"},
        )
    non_positive = values <= 0
    if non_positive.any():
        raise DatasetValidationError(
            f"--value-column {value_name!r}: {int(non_positive.sum())} of {len(raw)} prices are "
            f"zero or negative (e.g. {values[non_positive].iloc[0]!r} on "
            f"{dates[non_positive].iloc[0]:%Y-%m-%d}) in {what}; prices must be positive",
            {value_name: f"{int(non_positive.sum())} rows <= 0"},
        )
    return pd.DataFrame({DATE: dates.dt.strftime("%Y-%m-%d").to_numpy(), CLOSE: values.to_numpy()})
