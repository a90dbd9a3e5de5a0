"""File-level steps that KFP components call: paths in, parquet out, JSON-able summaries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.fingerprint import frame_fingerprint
from driftloop.datasets.labels import LabelMapping
from driftloop.datasets.registry import load_dataset
from driftloop.datasets.schemas import validate_frame

# CSV/JSON columns read as strings unless a caller says otherwise (labelled text)
TEXT_DTYPES = {"id": str, "text": str, "label": str}


def read_frame(path: str | Path, dtype: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A frame from Parquet (what the steps write), CSV or JSON (``.json``, ``.jsonl``).

    ``dtype`` applies to CSV and JSON columns (default :data:`TEXT_DTYPES`). KFP
    artifact paths carry no suffix, so a file without one is sniffed: Parquet by
    its magic bytes, else CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    dtype = TEXT_DTYPES if dtype is None else dict(dtype)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=dtype)
    if suffix in (".json", ".jsonl"):
        return pd.read_json(path, lines=suffix == ".jsonl", dtype=dtype)
    if not suffix:
        with path.open("rb") as handle:
            if handle.read(4) != b"PAR1":
                return pd.read_csv(path, dtype=dtype)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DatasetValidationError(f"{path} is not a readable parquet file: {exc}") from None


def write_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.reset_index(drop=True).to_parquet(path, index=False)
    return path


def label_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame["label"].value_counts().sort_index().items()}


def ingest_to(
    path: str | Path,
    dataset: str,
    source: str | Path | None = None,
    label_mapping: LabelMapping | str | dict | None = None,
    limit: int | None = None,
    **options,
) -> dict:
    """Load ``dataset`` and write it to ``path`` as parquet.

    ``limit`` keeps that many rows, picked by id order: ids are content hashes
    (or Olist's random review ids), so this is a fixed pseudo-random subset.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of rows, got {limit}")
    if label_mapping is not None:
        options["label_mapping"] = label_mapping
    frame = load_dataset(dataset, source, **options)
    stats = dict(frame.attrs.get("source_stats", {}))
    if limit is not None and limit < len(frame):
        frame = frame.sort_values("id", kind="mergesort").head(limit).reset_index(drop=True)
    write_frame(frame, path)
    return {
        "dataset": dataset,
        "source": str(source) if source is not None else None,
        "path": str(path),
        "rows": int(len(frame)),
        "labels": label_counts(frame),
        "columns": list(map(str, frame.columns)),
        "fingerprint": frame_fingerprint(frame),
        "source_stats": stats,
    }


def validate_file(path: str | Path, labels: Iterable[str] | None = None) -> dict:
    """Validate a labelled-text file; raise DatasetValidationError naming bad columns."""
    return {"path": str(path)} | validate_labelled_text(
        read_frame(path), labels, what=f"dataset file {path}"
    )


def validate_labelled_text(
    frame: pd.DataFrame, labels: Iterable[str] | None = None, what: str = "dataset"
) -> dict:
    """Check a labelled-text frame (schema, known labels, two classes at least)."""
    labels = list(labels) if labels else None
    validate_frame(frame, labels, what=what)
    counts = label_counts(frame)
    if len(counts) < 2:
        raise DatasetValidationError(
            f"{what}: column 'label': only one class present ({', '.join(counts)}); "
            "a classifier needs at least two"
        )
    return {
        "rows": int(len(frame)),
        "labels": counts,
        "columns": list(map(str, frame.columns)),
        "fingerprint": frame_fingerprint(frame),
        "valid": True,
    }
