"""Which split a row belongs to, decided by the row's id alone.

A row's split is a pure function of a sha256 of its id (salted with the split
seed) and of the split fractions: the same id lands in the same split in every
run, whatever other rows come and go. That is what keeps the champion/challenger
gate fair after retraining: the base rows a champion trained on stay in train
when feedback is added, so the challenger's test split holds none of them, and
a feedback row joins a split by its own id.

The scheme is recorded on every registered version (``driftloop.split.scheme``)
so the gate can recompute, for any test row, whether a champion trained with
another seed or other fractions has seen it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

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
