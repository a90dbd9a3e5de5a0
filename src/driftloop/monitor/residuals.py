"""Drift in the champion's errors, once ground truths arrive: a windowed online test.

Request windows tell what the model is asked; residuals tell how it is doing. For a
blueprint whose feedback names a per-instance error (``Feedback.residual``: a forecaster's
absolute log error), the monitor reads each judged instance once, in the order its truth
arrived. The first ``reference_size`` residuals of a champion are its reference; every
later, non-overlapping run of ``window`` residuals is tested against it (one-sided
Mann-Whitney U: are the new errors larger?). Disjoint windows keep each residual in one
test, so the false-alarm rate per window is ``p_val`` -- the same contract as the batch
detectors' windows -- with no simulation to configure (alibi-detect's online CVM detector
needed over a minute of bootstrap on 2 loaded cores for a 200-residual reference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResidualTest:
    p_value: float
    detected: bool
    reference_median: float
    window_median: float


@dataclass
class ResidualWatch:
    """Residuals of one champion version, in the order their truths arrived."""

    reference_size: int
    window: int
    p_val: float = 0.01
    reference: list[float] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)
    seen: set[tuple[str, int]] = field(default_factory=set)
    last: ResidualTest | None = None
    windows: int = 0

    def add_pairs(self, feedback: Any, pairs: Sequence[Any]) -> list[ResidualTest]:
        """Take the residuals of pairs not seen yet (oldest feedback first); the tests of
        every window they complete."""
        tests = []
        for pair in pairs:
            if pair.value is None or not pair.outputs:
                continue
            per_instance = isinstance(pair.value, list) and len(pair.value) == len(pair.outputs)
            for index, output in enumerate(pair.outputs):
                truth = pair.value[index] if per_instance else pair.value
                key = (pair.request_id, index)
                if truth is None or key in self.seen or not isinstance(output, dict):
                    continue
                try:
                    residual = feedback.residual(output, truth)
                except (KeyError, TypeError, ValueError):
                    residual = None
                if residual is None or not math.isfinite(residual):
                    continue
                self.seen.add(key)
                test = self.add(float(residual))
                if test is not None:
                    tests.append(test)
        return tests

    def add(self, residual: float) -> ResidualTest | None:
        if len(self.reference) < self.reference_size:
            self.reference.append(residual)
            return None
        self.pending.append(residual)
        if len(self.pending) < self.window:
            return None
        window, self.pending = self.pending, []
        self.last = self.test(window)
        self.windows += 1
        return self.last

    def test(self, window: Sequence[float]) -> ResidualTest:
        import numpy as np
        from scipy.stats import mannwhitneyu

        result = mannwhitneyu(window, self.reference, alternative="greater")
        p_value = float(result.pvalue)
        return ResidualTest(
            p_value=p_value,
            detected=p_value < self.p_val,
            reference_median=float(np.median(self.reference)),
            window_median=float(np.median(window)),
        )
