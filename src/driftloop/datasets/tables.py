"""Any table from a CSV or Parquet file (path or URL), and tables installed packages ship.

Rows come back as they are in the file plus a unique ``id`` column: the
given id column, else one detected (a column named like an id whose values
are unique), else a hash of the row's content. Bad files raise
``DatasetValidationError`` with a message a user can act on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftloop.datasets.errors import DatasetValidationError, UnknownDatasetError
from driftloop.datasets.fingerprint import stable_id
from driftloop.datasets.sources import open_source

ID_COLUMN = "id"
_ID_NAME = re.compile(r"^(id|.*[_ ]id|.*Id|ID|.*_ID)$")


def read_table(source: str | Path) -> pd.DataFrame:
    """A CSV (UTF-8) or Parquet table; named errors for empty, unreadable or non-UTF-8 files."""
    name = str(source)
    raw = open_source(source)
    if name.lower().endswith((".parquet", ".pq")):
        try:
            frame = pd.read_parquet(raw)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DatasetValidationError(f"{name} is not a readable Parquet file: {exc}") from None
    else:
        data = raw.getvalue()
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
            frame = pd.read_csv(io.StringIO(text), sep=None, engine="python")
        except (pd.errors.ParserError, csv.Error) as exc:
            raise DatasetValidationError(f"{name} is not a readable CSV file: {exc}") from None
    if frame.empty:
        raise DatasetValidationError(f"{name} has a header but no rows")
    frame.columns = [str(column).strip() for column in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise DatasetValidationError(f"{name}: duplicated column name(s) {', '.join(duplicated)}")
    return frame


def with_ids(frame: pd.DataFrame, id_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """``frame`` with a unique string ``id`` column first, and how the ids were found."""
    if id_column is not None:
        if id_column not in frame.columns:
            raise DatasetValidationError(
                f"--id-column: no column {id_column!r}; columns are {', '.join(frame.columns)}"
            )
        ids = frame[id_column]
        if ids.isna().any() or ids.duplicated().any():
            raise DatasetValidationError(
                f"column {id_column!r}: {int(ids.isna().sum())} empty and "
                f"{int(ids.duplicated().sum())} duplicated values; ids must be unique"
            )
        how = f"ids from column {id_column!r}"
    else:
        detected = [
            c
            for c in frame.columns
            if _ID_NAME.match(c) and frame[c].notna().all() and not frame[c].duplicated().any()
        ]
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


# name -> (loader, default target): tables that installed packages ship (no network)
SHIPPED_TABLES: dict[str, tuple[Callable[[], pd.DataFrame], str]] = {
    "penguins": (_penguins, "species"),
    "diabetes": (_diabetes, "progression"),
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
