"""Seeded, stratified train/val/test splits and content fingerprints.

Rows are put in id order before splitting, so the same rows give the same
splits whatever order the source file had; the fingerprints recorded on the
run and on the registered version prove which rows each split held.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from driftloop.datasets.files import read_frame, write_frame
from driftloop.datasets.fingerprint import frame_fingerprint

SPLIT_NAMES = ("train", "val", "test")


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the rows' ids and contents; row order does not matter."""
    return frame_fingerprint(frame)


@dataclass
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    fingerprints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.fingerprints:
            self.fingerprints = {name: fingerprint(getattr(self, name)) for name in SPLIT_NAMES}

    def sizes(self) -> dict[str, int]:
        return {name: int(len(getattr(self, name))) for name in SPLIT_NAMES}


def _min_rows_per_class(test_size: float, val_size: float) -> int:
    # every split must see every class at least once, and train at least twice
    needed = 3
    for fraction in (test_size, val_size):
        if fraction > 0:
            needed = max(needed, math.ceil(1 / fraction))
    return needed


def split_frame(
    frame: pd.DataFrame,
    *,
    seed: int = 42,
    test_size: float = 0.2,
    val_size: float = 0.1,
    label_column: str = "label",
    id_column: str = "id",
) -> Splits:
    """Stratified split into train/val/test with the given fractions of all rows."""
    if not 0 < test_size < 1 or not 0 < val_size < 1 or test_size + val_size >= 1:
        raise ValueError(
            f"test_size ({test_size}) and val_size ({val_size}) must be in (0, 1) "
            "and sum to less than 1"
        )
    for column in (label_column, id_column):
        if column not in frame.columns:
            raise ValueError(
                f"frame has no {column!r} column (columns: {', '.join(map(str, frame.columns))})"
            )
    counts = frame[label_column].value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"need at least two classes in {label_column!r} to split, got {list(counts.index)}"
        )
    needed = _min_rows_per_class(test_size, val_size)
    too_few = counts[counts < needed]
    if not too_few.empty:
        detail = ", ".join(f"{label!r} has {count}" for label, count in too_few.items())
        raise ValueError(
            f"class {detail} rows; a stratified split with test_size={test_size}, "
            f"val_size={val_size} needs at least {needed} rows per class"
        )
    ordered = frame.sort_values(id_column, kind="mergesort").reset_index(drop=True)
    rest, test = train_test_split(
        ordered, test_size=test_size, stratify=ordered[label_column], random_state=seed
    )
    train, val = train_test_split(
        rest, test_size=val_size / (1 - test_size), stratify=rest[label_column], random_state=seed
    )
    return Splits(*(part.reset_index(drop=True) for part in (train, val, test)))


def split_file(
    in_path: str | Path,
    out: str | Path | Mapping[str, str | Path],
    *,
    seed: int = 42,
    test_size: float = 0.2,
    val_size: float = 0.1,
) -> dict:
    """Split a labelled parquet/CSV file; write ``train``/``val``/``test`` parquet.

    Returns the fingerprints, JSON-ready: ``{"dataset", "train", "val", "test"}``.

    ``out`` is a folder (files ``train.parquet`` etc. inside) or a mapping
    ``{"train": path, "val": path, "test": path}`` (KFP output paths).
    """
    frame = read_frame(in_path)
    splits = split_frame(frame, seed=seed, test_size=test_size, val_size=val_size)
    if isinstance(out, Mapping):
        missing = [name for name in SPLIT_NAMES if name not in out]
        if missing:
            raise ValueError(f"split_file output mapping lacks {', '.join(missing)}")
        paths = {name: Path(out[name]) for name in SPLIT_NAMES}
    else:
        paths = {name: Path(out) / f"{name}.parquet" for name in SPLIT_NAMES}
    for name in SPLIT_NAMES:
        write_frame(getattr(splits, name), paths[name])
    return {"dataset": fingerprint(frame), **splits.fingerprints}
