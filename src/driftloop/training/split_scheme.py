"""Which split a row belongs to: by the row's id alone, or by its time.

Two schemes, each recorded on every registered version as text
(``driftloop.split.scheme``) and read back by the gate with ``parse_scheme``:

* ``id-sha256/v1 seed=N test=F val=F`` (``SplitScheme``) -- rows are exchangeable;
* ``time/v1 column=C test=X val=X gap=N [test_from=T]`` (``TimeSplitScheme``) --
  rows ordered in time (the blueprint names a ``time_column``): train, then val,
  then test, each later than the one before, with ``gap`` rows left out between
  them (a forecast whose window reaches back ``gap`` rows never sees a day another
  split scored on).

Id-hash scheme
--------------

A row's split is a pure function of a sha256 of its id (salted with the split
seed) and of the split fractions: the same id lands in the same split in every
run, whatever other rows come and go. That is what keeps the champion/challenger
gate fair after retraining: the base rows a champion trained on stay in train
when feedback is added, so the challenger's test split holds none of them, and
a feedback row joins a split by its own id. The gate recomputes, for any test
row, whether a champion trained with another seed or other fractions has seen it.

Time scheme
-----------

Sizes are counted in rows of the time-ordered table; the recorded ``test_from``
(the first test time) tells the gate that the champion saw every row before it,
so a retrained challenger's later test rows are fair ground for both.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

SCHEME_NAME = "id-sha256/v1"
_SCHEME_TEXT = re.compile(
    r"^id-sha256/v1 seed=(?P<seed>-?\d+) test=(?P<test>[0-9.eE-]+) val=(?P<val>[0-9.eE-]+)$"
)
_SEPARATOR = "\x1f"  # cannot occur in a seed, so "1" + "2x" never collides with "12" + "x"
_BUCKETS = float(2**64)


class SplitSchemeError(ValueError):
    """Split fractions out of range, or a recorded scheme that cannot be read back."""


@dataclass(frozen=True)
class SplitScheme:
    seed: int = 42
    test_size: float = 0.2
    val_size: float = 0.1

    def __post_init__(self) -> None:
        test, val = self.test_size, self.val_size
        if not 0 < test < 1 or not 0 < val < 1 or test + val >= 1:
            raise SplitSchemeError(
                f"test_size ({test}) and val_size ({val}) must be in (0, 1) and sum to less than 1"
            )

    def __str__(self) -> str:
        return f"{SCHEME_NAME} seed={self.seed} test={self.test_size!r} val={self.val_size!r}"

    @classmethod
    def parse(cls, text: str) -> SplitScheme:
        """The scheme a ``driftloop.split.scheme`` tag names."""
        match = _SCHEME_TEXT.match(text.strip())
        if match is None:
            raise SplitSchemeError(
                f"unknown split scheme {text!r} (expected '{SCHEME_NAME} seed=N test=F val=F')"
            )
        return cls(int(match["seed"]), float(match["test"]), float(match["val"]))

    def buckets(self, ids: Iterable[object]) -> np.ndarray:
        """Each id's place in [0, 1): the first 64 bits of sha256(seed, id)."""
        prefix = f"{self.seed}{_SEPARATOR}"
        return np.fromiter(
            (
                int.from_bytes(hashlib.sha256(f"{prefix}{i}".encode()).digest()[:8], "big")
                / _BUCKETS
                for i in ids
            ),
            dtype=np.float64,
        )

    def assign(self, ids: Iterable[object]) -> np.ndarray:
        """``"test"``, ``"val"`` or ``"train"`` for each id, in order."""
        bucket = self.buckets(ids)
        return np.where(
            bucket < self.test_size,
            "test",
            np.where(bucket < self.test_size + self.val_size, "val", "train"),
        )

    def seen_in_training(self, ids: Iterable[object]) -> np.ndarray:
        """True where a model trained under this scheme fitted or selected on the id.

        Validation rows count as seen: the winning candidate was chosen on them.
        """
        return self.assign(ids) != "test"

    def seen_rows(self, frame: pd.DataFrame, id_column: str = "id") -> np.ndarray:
        """``seen_in_training`` for the rows of a frame (the gate's question, any scheme)."""
        if id_column not in frame.columns:
            raise SplitSchemeError(
                f"the rows have no {id_column!r} column: cannot tell which ones {self} saw"
            )
        return self.seen_in_training(frame[id_column].astype(str))


TIME_SCHEME_NAME = "time/v1"
_TIME_SCHEME_TEXT = re.compile(
    r"^time/v1 column=(?P<column>\S+) test=(?P<test>[0-9.eE+-]+) val=(?P<val>[0-9.eE+-]+)"
    r" gap=(?P<gap>\d+)(?: test_from=(?P<test_from>\S+))?$"
)


def _size_text(size: float) -> str:
    return str(int(size)) if size >= 1 else repr(float(size))


@dataclass(frozen=True)
class TimeSplitScheme:
    """Train | gap | val | gap | test by the rows' order in ``column``.

    ``test`` and ``val`` are fractions of the rows (below 1) or row counts (whole
    numbers from 1). ``gap`` rows are left out between train and val and between
    val and test. Rows sharing a time never straddle a boundary (they join the
    later split). ``test_from``, the first test time, is set by the split itself
    and recorded: a model trained under this scheme saw every row before it.
    """

    column: str
    test: float = 0.2
    val: float = 0.1
    gap: int = 0
    test_from: str | None = None

    def __post_init__(self) -> None:
        if not self.column:
            raise SplitSchemeError("a time split needs the name of its time column")
        for name in ("test", "val"):
            size = float(getattr(self, name))
            if not math.isfinite(size) or size <= 0 or (size >= 1 and size != int(size)):
                raise SplitSchemeError(
                    f"{name} ({size}) must be a fraction in (0, 1) or a whole number of rows"
                )
        if self.test < 1 and self.val < 1 and self.test + self.val >= 1:
            raise SplitSchemeError(
                f"test ({self.test}) and val ({self.val}) fractions must sum to less than 1"
            )
        if int(self.gap) != self.gap or self.gap < 0:
            raise SplitSchemeError(f"gap ({self.gap}) must be a whole number of rows >= 0")

    def __str__(self) -> str:
        text = (
            f"{TIME_SCHEME_NAME} column={quote(self.column, safe='')} "
            f"test={_size_text(self.test)} val={_size_text(self.val)} gap={int(self.gap)}"
        )
        return text if self.test_from is None else f"{text} test_from={self.test_from}"

    @classmethod
    def parse(cls, text: str) -> TimeSplitScheme:
        match = _TIME_SCHEME_TEXT.match(text.strip())
        if match is None:
            raise SplitSchemeError(
                f"unknown split scheme {text!r} (expected '{TIME_SCHEME_NAME} column=C "
                "test=X val=X gap=N [test_from=T]')"
            )
        test_from = match["test_from"]
        return cls(
            unquote(match["column"]),
            float(match["test"]),
            float(match["val"]),
            int(match["gap"]),
            test_from,
        )

    def sizes(self, rows: int) -> tuple[int, int]:
        """(test rows, validation rows) for a table of ``rows`` rows."""

        def size(value: float) -> int:
            return int(value) if value >= 1 else max(1, round(rows * value))

        return size(self.test), size(self.val)

    def times(self, frame: pd.DataFrame) -> pd.Series:
        """The time column as comparable values: numbers stay numbers, text becomes UTC times."""
        if self.column not in frame.columns:
            raise SplitSchemeError(
                f"the rows have no time column {self.column!r} (columns: "
                f"{', '.join(map(str, frame.columns))})"
            )
        values = frame[self.column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            parsed = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        # no time at all (a row built from feedback that named no date) is NaT, left to the
        # caller; a time that cannot be read is an error
        blank = values.isna() | (values.astype(str).str.strip() == "")
        bad = parsed.isna() & ~blank
        if bad.any():
            raise SplitSchemeError(
                f"time column {self.column!r}: {int(bad.sum())} of {len(frame)} rows have no "
                f"readable time (e.g. {values[bad].iloc[0]!r})"
            )
        return parsed

    def boundary(self, times: pd.Series, position: int) -> str:
        """The recordable text of the time at ``position`` (of ``times`` in order)."""
        value = times.iloc[position]
        if isinstance(value, float | np.floating):
            return repr(float(value))
        # a day's date reads as one (daily series); anything finer keeps its time and zone
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()

    def _test_from(self, times: pd.Series):
        if self.test_from is None:
            raise SplitSchemeError(
                f"split scheme {self} records no test_from: the split was not run"
            )
        if pd.api.types.is_float_dtype(times):
            return float(self.test_from)
        moment = pd.Timestamp(self.test_from)
        return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")

    def seen_rows(self, frame: pd.DataFrame, id_column: str = "id") -> np.ndarray:
        """True where a model trained under this scheme fitted or selected on the row (or
        could have: every row before the first test time, the gaps included)."""
        times = self.times(frame)
        return (times < self._test_from(times)).to_numpy()

    def with_test_from(self, test_from: str) -> TimeSplitScheme:
        return replace(self, test_from=test_from)


AnyScheme = SplitScheme | TimeSplitScheme


def parse_scheme(text: str) -> AnyScheme:
    """The scheme a ``driftloop.split.scheme`` tag names, whichever kind it is."""
    if text.strip().startswith(TIME_SCHEME_NAME):
        return TimeSplitScheme.parse(text)
    return SplitScheme.parse(text)
