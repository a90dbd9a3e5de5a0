"""The promotion policy: pure decisions, no registry access.

The gate (``driftloop.training.gate``) gathers the scores; this module only
says what they mean, so the rules can be read and tested on their own.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

PROMOTE = "promote"
KEEP = "keep"
MCNEMAR = "mcnemar"
SIGNIFICANCE_TESTS = (MCNEMAR,)
Outcome = Literal["promote", "keep"]

ROLLBACK_ALERT = "LiveScoreDrop"
DEFAULT_ROLLBACK_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Decision:
    """What the gate decided and the numbers it decided on.

    ``required`` is the score the challenger had to reach: the floor for a
    first model, else the champion's score plus the relative margin.
    """

    outcome: Outcome
    reason: str
    challenger_score: float
    champion_score: float | None
    required: float
    champion_version: str | None = None
    rescored: bool = False

    @property
    def promote(self) -> bool:
        return self.outcome == PROMOTE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__ if name in data})


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def decide(
    challenger_score: float,
    champion_score: float | None,
    *,
    floor: float | None,
    min_improvement: float,
    greater_is_better: bool = True,
) -> Decision:
    """Promote or keep.

    A first model (no champion) is promoted iff it reaches the absolute
    ``floor`` (a ceiling when lower is better; None: any finite score). A challenger replaces a
    champion only if it improves on it by at least ``min_improvement``
    relative to the champion's score -- noise-level gains never churn the
    production model.
    """
    challenger = _finite("challenger_score", challenger_score)
    if floor is not None:
        floor = _finite("floor", floor)
    if not 0.0 <= min_improvement <= 1.0:
        raise ValueError(f"min_improvement must be between 0 and 1, got {min_improvement!r}")
    better = ">=" if greater_is_better else "<="

    if champion_score is None and floor is None:
        reason = f"first model: score {challenger:.4f} (no floor for this metric)"
        return Decision(PROMOTE, reason, challenger, None, challenger)
    if champion_score is None:
        passes = challenger >= floor if greater_is_better else challenger <= floor
        if passes:
            reason = f"first model: score {challenger:.4f} {better} floor {floor:.4f}"
        else:
            reason = f"first model: score {challenger:.4f} misses floor {floor:.4f}"
        return Decision(PROMOTE if passes else KEEP, reason, challenger, None, floor)

    champion = _finite("champion_score", champion_score)
    margin = abs(champion) * min_improvement
    if greater_is_better:
        required = champion + margin
        # strictly better as well, so a zero margin never swaps equal models
        passes = challenger >= required and challenger > champion
    else:
        required = champion - margin
        passes = challenger <= required and challenger < champion
    gain = _relative_gain(challenger, champion, greater_is_better)
    if passes:
        reason = (
            f"challenger {challenger:.4f} beats champion {champion:.4f} by {gain:+.2%} "
            f"(needs {min_improvement:.2%})"
        )
    else:
        reason = (
            f"challenger {challenger:.4f} vs champion {champion:.4f}: {gain:+.2%}, "
            f"needs {min_improvement:.2%} (score {better} {required:.4f})"
        )
    return Decision(PROMOTE if passes else KEEP, reason, challenger, champion, required)


@dataclass(frozen=True)
class PairedTest:
    """McNemar's exact test on two classifiers' per-row correctness on the same rows."""

    challenger_only: int  # rows only the challenger got right
    champion_only: int  # rows only the champion got right
    p_value: float

    def describe(self) -> str:
        return (
            f"McNemar p = {self.p_value:.3g} ({self.challenger_only} rows only the challenger "
            f"gets right, {self.champion_only} only the champion)"
        )


def mcnemar(challenger_correct: Any, champion_correct: Any) -> PairedTest:
    """Exact two-sided McNemar test: are the discordant rows split other than 50/50?

    Only rows where the two models disagree on correctness carry information;
    with none, nothing tells the models apart (p = 1).
    """
    import numpy as np
    from scipy.stats import binomtest

    challenger = np.asarray(challenger_correct, dtype=bool)
    champion = np.asarray(champion_correct, dtype=bool)
    if challenger.shape != champion.shape:
        raise ValueError("both models must be judged on the same rows")
    only_challenger = int(np.sum(challenger & ~champion))
    only_champion = int(np.sum(champion & ~challenger))
    discordant = only_challenger + only_champion
    p_value = 1.0 if discordant == 0 else float(binomtest(only_challenger, discordant).pvalue)
    return PairedTest(only_challenger, only_champion, p_value)


def require_significance(decision: Decision, test: PairedTest, alpha: float) -> Decision:
    """``decision`` kept as is unless it promotes without ``test`` reaching ``alpha``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if not decision.promote:
        return decision
    better = test.challenger_only > test.champion_only
    if better and test.p_value < alpha:
        return replace(decision, reason=f"{decision.reason}; {test.describe()} < {alpha:g}")
    return replace(
        decision,
        outcome=KEEP,
        reason=f"{decision.reason}, but {test.describe()}: not significant at {alpha:g}",
    )


def _relative_gain(challenger: float, champion: float, greater_is_better: bool) -> float:
    delta = challenger - champion if greater_is_better else champion - challenger
    if champion == 0:
        return math.inf if delta > 0 else (0.0 if delta == 0 else -math.inf)
    return delta / abs(champion)


def should_roll_back(
    reason: str,
    promoted_at: datetime | None,
    now: datetime,
    window: timedelta | float = DEFAULT_ROLLBACK_WINDOW,
) -> bool:
    """Roll back iff the live score (LiveScoreDrop) fell soon after a promotion.

    A drop inside ``window`` (a timedelta or seconds) after the champion was
    promoted is blamed on the promotion; later drops, and other alerts, are
    left to retraining.
    """
    if reason != ROLLBACK_ALERT or promoted_at is None:
        return False
    if not isinstance(window, timedelta):
        window = timedelta(seconds=float(window))
    if (promoted_at.tzinfo is None) != (now.tzinfo is None):
        raise ValueError("promoted_at and now must both be timezone-aware or both naive")
    elapsed = now - promoted_at
    return timedelta(0) <= elapsed <= window
