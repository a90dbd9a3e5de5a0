"""The wall-clock budget of one training: what the search may spend, what follows it.

A ``--time-budget`` bounds the whole ``train_candidates`` call, not only the
search: after the search come the winner's refit (on more rows), the
ensembles (preset ``best``: the top members refitted, stacking's out-of-fold
fits) and MLflow's model logging. ``TimeBudget`` keeps the clock and
estimates those from fit times measured during the search, so the search
stops early enough for them to fit:

    reserve = RESERVE_SAFETY x (refit (winner's fit time x rows ratio)
                                + ensembles (if they fit)
                                + logging (the last measured log_model)) + a margin

A refit on train + validation that no longer fits when the search ends is
skipped (the winner fitted on the training rows serves; said in the summary).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

# what log_model (and the run's closing writes) took last time in this process; a first
# training has no measurement, so a conservative guess stands in for it
_logging_seconds = [3.0]
MARGIN_SHARE = 0.05  # of the budget: the clock's slack for the bookkeeping between steps
# what follows the search is reserved with this slack: a refit or a model logging on a
# busy machine takes up to ~1.5x what the same step measured a minute earlier (bench
# automl at load 14-29 on 2 cores: the refit and log_model overran a 1.0x reserve)
RESERVE_SAFETY = 1.5
ENSEMBLE_RESERVE_SHARE = 0.25  # ensembles costing more than this share are not reserved for
STACKING_FOLDS = 5  # training.ensembles: stacking's out-of-fold fits per member


def record_logging_seconds(seconds: float) -> None:
    """Remember how long logging the model took (the next budget reserves that)."""
    _logging_seconds[0] = 0.5 * _logging_seconds[0] + 0.5 * max(seconds, 0.0)


def logging_seconds() -> float:
    return _logging_seconds[0]


VOTING_SHARE = 0.1  # scoring a vote over fitted members, as a share of their fits


def ensemble_seconds(
    member_fit_seconds: list[float], rows_ratio: float, *, refit: bool, stacking: bool = True
) -> float:
    """Ensembles over members whose one fit took these seconds: each member refitted on the
    training rows (unless already fitted there), the votes scored, then (``stacking``)
    stacking's out-of-fold fits plus a final fit of every member."""
    total = sum(member_fit_seconds) * rows_ratio
    extra = 1.0 + STACKING_FOLDS * 0.8 if stacking else VOTING_SHARE
    return total * ((1.0 if refit else 0.0) + extra)


@dataclass
class TimeBudget:
    """The clock of one training; ``total_s`` None: no budget (nothing is ever short)."""

    total_s: float | None
    started: float = field(default_factory=time.perf_counter)

    @property
    def bounded(self) -> bool:
        return self.total_s is not None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Seconds left of the whole budget (infinite without one)."""
        if self.total_s is None:
            return float("inf")
        return self.total_s - self.elapsed()

    def margin(self) -> float:
        return 0.0 if self.total_s is None else MARGIN_SHARE * self.total_s

    def search_left(self, reserve_s: float) -> float:
        """Seconds the search may still spend, keeping ``reserve_s`` (with its safety
        factor) for what follows it."""
        return self.left() - RESERVE_SAFETY * reserve_s - self.margin()

    def fits(self, seconds: float) -> bool:
        """Whether a step expected to take ``seconds`` (safety factor included) still fits
        before the end, model logging kept aside."""
        if self.total_s is None:
            return True
        return RESERVE_SAFETY * (seconds + logging_seconds()) <= self.left() - self.margin()

    def spent(self) -> bool:
        return self.left() <= 0


def fit_threads() -> int:
    """Threads one fit should use: the cores this process may run on, or 1 when the
    machine is oversubscribed (1-minute load average at or above that core count).

    Why: OpenMP learners (HistGradientBoosting, LightGBM) synchronise their threads
    hundreds of times per tree; on a machine busier than its cores a descheduled thread
    stalls the others at every barrier. Measured on a 2-core box at load 14:
    HistGradientBoostingClassifier on 1,077 digits rows took 185 s on 2 threads and
    5.5 s on 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return max(cores, 1)
    return 1 if load >= cores else max(cores, 1)
