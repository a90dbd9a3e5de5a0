"""Train/val/test splits by row id or by time, with content fingerprints.

Split membership comes from :mod:`driftloop.training.split_scheme`: a hash of
each row's id, so a row stays in its split across runs and a retrained model's
test split never holds a row the champion trained on (same seed and
fractions). Stratification is approximate -- each class is spread over the
splits in the configured fractions by the hash -- and checked: every class
must reach every split. The fingerprints recorded on the run and on the
registered version prove which rows each split held.

Rows ordered in time (a blueprint with a ``time_column``) are split by
``TimeSplitScheme`` instead (``split_frame_in_time``): train before val before
test, with gaps; ``split_with_scheme`` takes either scheme.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from driftloop.datasets.files import read_frame, write_frame
from driftloop.datasets.fingerprint import frame_fingerprint
from driftloop.training.split_scheme import AnyScheme, SplitScheme, TimeSplitScheme

SPLIT_NAMES = ("train", "val", "test")
# classes named in a split error; the rest are counted
_SHOWN_CLASSES = 5


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the rows' ids and contents; row order does not matter."""
    return frame_fingerprint(frame)


@dataclass
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    fingerprints: dict[str, str] = field(default_factory=dict)
    scheme: AnyScheme | None = None
    untimed_rows: int = 0  # rows a time split left out: they had no time to place them by

    def __post_init__(self) -> None:
        if not self.fingerprints:
            self.fingerprints = {name: fingerprint(getattr(self, name)) for name in SPLIT_NAMES}

    def sizes(self) -> dict[str, int]:
        return {name: int(len(getattr(self, name))) for name in SPLIT_NAMES}


def _min_rows_per_class(test_size: float, val_size: float) -> int:
    # below this a class cannot be expected to reach every split (train twice)
    needed = 3
    for fraction in (test_size, val_size):
        if fraction > 0:
            needed = max(needed, math.ceil(1 / fraction))
    return needed


def _check_columns(frame: pd.DataFrame, label_column: str | None, id_column: str) -> None:
    for column in (c for c in (label_column, id_column) if c is not None):
        if column not in frame.columns:
            raise ValueError(
                f"frame has no {column!r} column (columns: {', '.join(map(str, frame.columns))})"
            )
    duplicated = frame[id_column].astype(str).duplicated()
    if duplicated.any():
        example = frame[id_column][duplicated].iloc[0]
        raise ValueError(
            f"column {id_column!r} has {int(duplicated.sum())} duplicate id(s), e.g. {example!r}: "
            "a row's split is decided by its id, so ids must be unique"
        )


def _check_class_counts(counts: pd.Series, scheme: SplitScheme, label_column: str) -> None:
    check_class_counts(counts, label_column, test_size=scheme.test_size, val_size=scheme.val_size)


def check_class_counts(
    counts: pd.Series, label_column: str, *, test_size: float = 0.2, val_size: float = 0.1
) -> None:
    """Raise ``ValueError`` unless every class (``counts``: rows per class) can reach every split.

    Seed-independent: a table can be checked before a run. The message names
    the column, the row counts and at most a few of the classes that are short.
    """
    total = int(counts.sum())
    if len(counts) < 2:
        raise ValueError(
            f"need at least two classes in {label_column!r} to split, got "
            f"{list(counts.index)} in {total} rows"
        )
    needed = _min_rows_per_class(test_size, val_size)
    too_few = counts[counts < needed].sort_values(kind="mergesort")
    if not too_few.empty:
        shown = too_few.head(_SHOWN_CLASSES)
        detail = ", ".join(f"{label!r} has {count} rows" for label, count in shown.items())
        more = len(too_few) - len(shown)
        if more:
            detail += f" and {more} more of the {len(counts)} classes"
        raise ValueError(
            f"column {label_column!r}: class {detail} ({total} rows in all); a split with "
            f"test_size={test_size}, val_size={val_size} needs at least {needed} rows per class "
            "(every class must reach train, val and test): add rows or merge rare classes"
        )


def _check_every_class_reaches_every_split(
    frame: pd.DataFrame, assigned: pd.Series, label_column: str
) -> None:
    present = pd.crosstab(frame[label_column], assigned).reindex(columns=SPLIT_NAMES, fill_value=0)
    for label, row in present.iterrows():
        empty = [name for name in SPLIT_NAMES if row[name] == 0]
        if empty:
            raise ValueError(
                f"column {label_column!r}: class {label!r} ({int(row.sum())} rows) has no row "
                f"in the {' and '.join(empty)} split(s) of {len(frame)} rows: the id hash "
                "spread it unevenly; add rows of that class or try another --seed"
            )


def split_frame(
    frame: pd.DataFrame,
    *,
    seed: int = 42,
    test_size: float = 0.2,
    val_size: float = 0.1,
    label_column: str | None = "label",
    id_column: str = "id",
    min_held_out: int = 0,
) -> Splits:
    """Split into train/val/test by a hash of each row's id (see ``SplitScheme``).

    ``label_column`` names the classes every split must hold (None: no classes,
    e.g. a regression target). ``min_held_out``: the fewest rows val and test
    may hold together (what is fitted on them afterwards needs them).
    """
    scheme = SplitScheme(seed=seed, test_size=test_size, val_size=val_size)
    _check_columns(frame, label_column, id_column)
    if label_column is not None:
        _check_class_counts(frame[label_column].astype(str).value_counts(), scheme, label_column)
    # id order: the same rows give the same split files whatever order the source had
    ordered = frame.sort_values(id_column, kind="mergesort").reset_index(drop=True)
    assigned = pd.Series(scheme.assign(ordered[id_column].astype(str)), index=ordered.index)
    if label_column is not None:
        _check_every_class_reaches_every_split(ordered, assigned, label_column)
    held_out = int((assigned != "train").sum())
    if held_out < min_held_out:
        raise ValueError(
            f"{len(frame)} rows leave {held_out} for validation and test; at least "
            f"{min_held_out} are needed (the drift reference is fitted on them): "
            f"add rows (about {rows_needed(min_held_out, test_size, val_size)} or more)"
        )
    parts = (ordered[assigned == name].reset_index(drop=True) for name in SPLIT_NAMES)
    return Splits(*parts, scheme=scheme)


def split_frame_in_time(
    frame: pd.DataFrame,
    scheme: TimeSplitScheme,
    *,
    label_column: str | None = None,
    id_column: str = "id",
    min_held_out: int = 0,
) -> Splits:
    """Train | gap | val | gap | test by ``scheme.column`` (see ``TimeSplitScheme``).

    The returned splits carry the scheme with its ``test_from`` set (what the
    version records). Every split must hold a row (and, with ``label_column``,
    every class); val and test together at least ``min_held_out`` rows.
    """
    _check_columns(frame, label_column, id_column)
    times = scheme.times(frame)
    # rows with no time cannot be placed before or after anything: left out, and counted
    timed = times.notna().to_numpy()
    untimed = int((~timed).sum())
    frame, times = frame[timed], times[timed]
    # time order, ids breaking ties: the same rows give the same split files in any order
    order = pd.DataFrame({"time": times.to_numpy(), "id": frame[id_column].astype(str).to_numpy()})
    positions = order.sort_values(["time", "id"], kind="mergesort").index.to_numpy()
    ordered = frame.iloc[positions].reset_index(drop=True)
    times = times.iloc[positions].reset_index(drop=True)
    rows = len(ordered)
    test_rows, val_rows = scheme.sizes(rows)
    gap = int(scheme.gap)
    test_start = rows - test_rows
    val_start = test_start - gap - val_rows
    train_end = val_start - gap
    if train_end < 1:
        raise ValueError(
            f"{rows} rows ordered by {scheme.column!r} leave none for training: {test_rows} "
            f"test and {val_rows} validation rows with gaps of {gap} need more than "
            f"{test_rows + val_rows + 2 * gap} rows (split {scheme})"
        )
    # boundaries are times, so rows sharing a time join the later split together
    test_from, val_until = times.iloc[test_start], times.iloc[test_start - gap]
    val_from, train_until = times.iloc[val_start], times.iloc[train_end]
    assigned = pd.Series("gap", index=ordered.index)
    assigned[times < train_until] = "train"
    assigned[(times >= val_from) & (times < val_until)] = "val"
    assigned[times >= test_from] = "test"
    counts = assigned.value_counts()
    empty = [name for name in SPLIT_NAMES if counts.get(name, 0) == 0]
    if empty:
        raise ValueError(
            f"the {' and '.join(empty)} split(s) of {rows} rows ordered by {scheme.column!r} "
            f"are empty: too many rows share a time at the boundaries (split {scheme})"
        )
    if label_column is not None:
        kept = assigned != "gap"
        present = pd.crosstab(ordered[label_column][kept], assigned[kept])
        present = present.reindex(columns=SPLIT_NAMES, fill_value=0)
        for label, row in present.iterrows():
            missing = [name for name in SPLIT_NAMES if row[name] == 0]
            if missing:
                raise ValueError(
                    f"column {label_column!r}: class {label!r} has no row in the "
                    f"{' and '.join(missing)} split(s) by time ({scheme}): the class does "
                    "not occur throughout the period; add rows or merge rare classes"
                )
    held_out = int(counts.get("val", 0) + counts.get("test", 0))
    if held_out < min_held_out:
        raise ValueError(
            f"{rows} rows ordered by {scheme.column!r} leave {held_out} for validation and "
            f"test; at least {min_held_out} are needed (the drift reference is fitted on them)"
        )
    parts = (ordered[assigned == name].reset_index(drop=True) for name in SPLIT_NAMES)
    return Splits(*parts, scheme=scheme.with_test_from(scheme.boundary(times, test_start)),
                  untimed_rows=untimed)  # fmt: skip


def split_with_scheme(
    frame: pd.DataFrame,
    scheme: AnyScheme,
    *,
    label_column: str | None = "label",
    id_column: str = "id",
    min_held_out: int = 0,
) -> Splits:
    """``split_frame`` (id hash) or ``split_frame_in_time``, as ``scheme`` says."""
    if isinstance(scheme, TimeSplitScheme):
        return split_frame_in_time(
            frame, scheme, label_column=label_column, id_column=id_column,
            min_held_out=min_held_out,
        )  # fmt: skip
    return split_frame(
        frame, seed=scheme.seed, test_size=scheme.test_size, val_size=scheme.val_size,
        label_column=label_column, id_column=id_column, min_held_out=min_held_out,
    )  # fmt: skip


def rows_needed(min_held_out: int, test_size: float = 0.2, val_size: float = 0.1) -> int:
    """Rows a table needs for val and test to hold ``min_held_out`` rows, with a margin."""
    return math.ceil(1.5 * min_held_out / (test_size + val_size))


def check_row_count(
    rows: int, min_held_out: int, *, test_size: float = 0.2, val_size: float = 0.1
) -> None:
    """Raise ``ValueError`` when ``rows`` cannot be expected to leave ``min_held_out`` rows
    for validation and test (seed-independent: checked before a run)."""
    expected = rows * (test_size + val_size)
    if expected < min_held_out:
        raise ValueError(
            f"the table has {rows} rows; validation and test take {test_size + val_size:.0%} "
            f"of them (about {math.floor(expected)}), and at least {min_held_out} are needed "
            f"(the drift reference is fitted on them): use about "
            f"{rows_needed(min_held_out, test_size, val_size)} rows or more"
        )


def split_file(
    in_path: str | Path,
    out: str | Path | Mapping[str, str | Path],
    *,
    seed: int = 42,
    test_size: float = 0.2,
    val_size: float = 0.1,
    label_column: str | None = "label",
    min_held_out: int = 0,
    scheme: AnyScheme | None = None,
    id_column: str = "id",
) -> dict:
    """Split a labelled parquet/CSV file; write ``train``/``val``/``test`` parquet.

    ``scheme``: how (default: the id-hash scheme of ``seed``, ``test_size``, ``val_size``).

    Returns the fingerprints and the scheme, JSON-ready:
    ``{"dataset", "train", "val", "test", "scheme"}``.

    ``out`` is a folder (files ``train.parquet`` etc. inside) or a mapping
    ``{"train": path, "val": path, "test": path}`` (KFP output paths).
    """
    frame = read_frame(in_path)
    scheme = scheme or SplitScheme(seed=seed, test_size=test_size, val_size=val_size)
    splits = split_with_scheme(
        frame, scheme, label_column=label_column, id_column=id_column, min_held_out=min_held_out
    )
    if isinstance(out, Mapping):
        missing = [name for name in SPLIT_NAMES if name not in out]
        if missing:
            raise ValueError(f"split_file output mapping lacks {', '.join(missing)}")
        paths = {name: Path(out[name]) for name in SPLIT_NAMES}
    else:
        paths = {name: Path(out) / f"{name}.parquet" for name in SPLIT_NAMES}
    for name in SPLIT_NAMES:
        write_frame(getattr(splits, name), paths[name])
    summary = {"dataset": fingerprint(frame), **splits.fingerprints, "scheme": str(splits.scheme)}
    return summary | ({"untimed_rows": splits.untimed_rows} if splits.untimed_rows else {})
