"""Content fingerprints of frames: same rows (in any order) -> same digest."""

from __future__ import annotations

import hashlib

import pandas as pd

_FIELD = "\x1f"  # unit separator: cannot occur in CSV-sourced text
_ROW = "\x1e"


def _cell(value: object) -> str:
    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return "\x00"  # distinguishes a missing value from the string "nan"
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over every row's values, columns by name, rows in sorted order.

    Row order and column order do not matter; changing any value, id, column
    name or the number of rows changes the digest. The index is ignored.
    """
    columns = sorted(map(str, frame.columns))
    ordered = frame.set_axis(list(map(str, frame.columns)), axis=1)[columns]
    rows = sorted(
        hashlib.sha256(_FIELD.join(_cell(v) for v in row).encode("utf-8")).hexdigest()
        for row in ordered.itertuples(index=False, name=None)
    )
    digest = hashlib.sha256()
    digest.update(_FIELD.join(columns).encode("utf-8"))
    for row in rows:
        digest.update(_ROW.encode())
        digest.update(row.encode())
    return digest.hexdigest()


def stable_id(prefix: str, *parts: object) -> str:
    """An id derived from content, identical on every run and machine."""
    digest = hashlib.sha256(_FIELD.join(map(str, parts)).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:16]}"
