"""Keep the incumbent unless a challenger beats it by more than the validation noise.

A search scores many configurations on the same few validation rows; the best of
them is partly the luckiest. A challenger (a tuned configuration, another
candidate, an ensemble) replaces the incumbent (the candidate scored first, at its
defaults) only when a **paired bootstrap** over the validation rows says its edge
is real: the rows of each validation fold are resampled with replacement (the
same rows for both models, so the comparison is paired), both models are scored
on each resample with the blueprint's own ``score`` (any primary metric, any
blueprint: ROC-AUC, log-loss and RMSE alike), and the p-value is the share of
resamples on which the challenger is not better. The challenger wins when
``p <= level``.

The challenger is the best of many configurations scored on the same rows, so its
validation edge is biased upwards by the selection itself (measured: a tuned
LightGBM on attrition, best of ~25 trials, beat its defaults on validation at
p = 0.04 and lost on the test rows). The test corrects for that by Bonferroni:
with ``comparisons`` = the configurations the challenger was picked from (every
trial and default scored against the incumbent, and every ensemble tried), it
wins only at ``p <= level / comparisons`` (family-wise level 0.05). The
resamples are as many as that threshold needs to be reachable (the add-one
p-value cannot go below 1 / (resamples + 1)). The resampling stops early once
the challenger can no longer reach the threshold (the verdict is then already
the incumbent's), and with ``max_seconds`` when the time is up; fewer resamples
can only raise the p-value, so a test cut short keeps the incumbent.

Each model predicts once per fold: a resample reads its rows from the recorded
predictions, so the bootstrap costs the metric computations only; a blueprint
with a ``row_scorer(model, frame)`` (a function of row positions returning the
primary metric, the tabular blueprint's) is resampled on arrays, without
``score``'s other metrics; any other through ``score`` and ``_Recorded``.
Seeded: the same inputs give the same verdict.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.base import Blueprint

DEFAULT_LEVEL = 0.05  # family-wise: Bonferroni-divided by the comparisons made
# at least this many resamples; more when the corrected level needs them to be reachable
DEFAULT_RESAMPLES = 100
MAX_RESAMPLES = 20_000


def resamples_for(level: float, comparisons: int) -> int:
    """Resamples enough for the add-one p-value to reach ``level / comparisons`` with room
    to spare (twice the minimum), at least ``DEFAULT_RESAMPLES``."""
    needed = math.ceil(2 * max(comparisons, 1) / level)
    return min(max(DEFAULT_RESAMPLES, needed), MAX_RESAMPLES)


PREDICT_METHODS = ("predict_proba", "predict", "decision_function")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one incumbent-vs-challenger test."""

    incumbent: str
    challenger: str
    metric: str
    incumbent_score: float
    challenger_score: float
    p_value: float
    level: float  # the per-test threshold: the family-wise level / comparisons
    resamples: int
    comparisons: int = 1

    @property
    def difference(self) -> float:
        """How much better the challenger scored on all validation rows (> 0: better)."""
        return self.challenger_score - self.incumbent_score

    @property
    def challenger_wins(self) -> bool:
        return self.p_value <= self.level

    @property
    def winner(self) -> str:
        return self.challenger if self.challenger_wins else self.incumbent

    def summary(self) -> str:
        edge = f"{self.metric} {self.challenger_score:.4f} vs {self.incumbent_score:.4f}"
        test = (
            f"paired bootstrap p={self.p_value:.4f} ({self.resamples} resamples, level "
            f"{self.level:.3g} = {self.level * self.comparisons:g}/{self.comparisons} comparisons)"
        )
        if self.challenger_wins:
            return f"{self.challenger} replaces {self.incumbent}: {edge}, {test}"
        return f"kept {self.incumbent}: challenger {self.challenger} {edge} but {test}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "incumbent": self.incumbent,
            "challenger": self.challenger,
            "metric": self.metric,
            "incumbent_score": self.incumbent_score,
            "challenger_score": self.challenger_score,
            "p_value": self.p_value,
            "level": self.level,
            "resamples": self.resamples,
            "comparisons": self.comparisons,
            "winner": self.winner,
        }


class _Recorded:
    """A fitted model whose predictions on one frame's features are computed once.

    Before scoring a resample, ``expect(rows)`` names its rows (positions in the frame);
    a prediction asked for exactly those rows (the features' index, which the frame's
    0..n-1 index carries through ``Blueprint.features``) is read from the record; anything
    else (features without that index) goes to the model itself, so a blueprint whose
    features do not keep the rows' index is scored correctly, only slower.
    """

    def __init__(self, model: Any, features: Any) -> None:
        self._model, self._features = model, features
        self._recorded: dict[str, np.ndarray] = {}
        self._rows: np.ndarray | None = None

    def expect(self, rows: np.ndarray | None) -> None:
        self._rows = rows

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._model, name)
        if name not in PREDICT_METHODS:
            return attribute

        def recorded(features: Any, *args: Any, **kwargs: Any) -> Any:
            # a list (text blueprints) has an ``index`` method, not row labels
            index = features.index if isinstance(features, (pd.Series, pd.DataFrame)) else None
            expected = self._rows if self._rows is not None else np.arange(len(features))
            if (
                args
                or kwargs
                or index is None
                or len(index) != len(expected)
                or not np.array_equal(np.asarray(index), expected)
            ):
                return attribute(features, *args, **kwargs)
            if name not in self._recorded:
                self._recorded[name] = np.asarray(attribute(self._features))
            return self._recorded[name][expected]

        return recorded


def _primary(blueprint: Blueprint, model: Any, frame: pd.DataFrame) -> float | None:
    try:
        value = blueprint.score(model, frame).get(blueprint.primary_metric)
    except ValueError:  # e.g. a resample with a single class
        return None
    return None if value is None or not np.isfinite(value) else float(value)


def paired_bootstrap(
    blueprint: Blueprint,
    incumbent: Sequence[Any],
    challenger: Sequence[Any],
    frames: Sequence[pd.DataFrame],
    *,
    names: tuple[str, str] = ("incumbent", "challenger"),
    seed: int = 0,
    resamples: int | None = None,
    level: float = DEFAULT_LEVEL,
    comparisons: int = 1,
    max_seconds: float | None = None,
) -> Verdict:
    """Test whether ``challenger`` beats ``incumbent`` on the validation ``frames``.

    ``incumbent[i]`` and ``challenger[i]`` are fitted models scored on ``frames[i]``
    (one per fold; a holdout is one fold). The score of a model is the blueprint's
    primary metric averaged over the folds, as the search ranks it. ``comparisons``:
    how many configurations the challenger is the best of (Bonferroni: it wins at
    ``p <= level / comparisons``); ``resamples`` None: as many as that needs.
    """
    if not (len(incumbent) == len(challenger) == len(frames)) or not frames:
        raise ValueError("one incumbent model and one challenger model per validation fold")
    if comparisons < 1:
        raise ValueError(f"comparisons must be at least 1, got {comparisons}")
    if resamples is None:
        resamples = resamples_for(level, comparisons)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    threshold = level / comparisons
    frames = [frame.reset_index(drop=True) for frame in frames]
    scores = _fold_scorer(blueprint, incumbent, challenger, frames)
    full = scores(None)
    if full is None:
        raise ValueError(f"{blueprint.primary_metric} cannot be computed on the validation rows")
    rng = np.random.default_rng(seed)
    not_better, counted = 0, 0
    # the challenger loses once (not_better + 1) / (resamples + 1) > threshold is certain
    hopeless = threshold * (resamples + 1) - 1
    started = time.perf_counter()
    for _ in range(resamples):
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        if not_better > hopeless:
            break
        take = [rng.integers(0, len(frame), len(frame)) for frame in frames]
        pair = scores(take)
        if pair is None:
            continue
        counted += 1
        if not blueprint.better(pair[1], pair[0]):
            not_better += 1
    # no usable resample: no evidence for the challenger
    p_value = (not_better + 1) / (counted + 1)
    return Verdict(
        names[0], names[1], blueprint.primary_metric, full[0], full[1], p_value, threshold,
        counted, comparisons,
    )  # fmt: skip


Scores = Callable[[list[np.ndarray] | None], tuple[float, float] | None]


def _fold_scorer(
    blueprint: Blueprint,
    incumbent: Sequence[Any],
    challenger: Sequence[Any],
    frames: Sequence[pd.DataFrame],
) -> Scores:
    """(incumbent's, challenger's) primary metric averaged over the folds, on the given row
    positions of each fold (None: all rows); None when a resample has no defined metric."""
    row_scorer = getattr(blueprint, "row_scorer", None)
    by_rows = None
    if row_scorer is not None:
        by_rows = [
            (row_scorer(old, frame), row_scorer(new, frame))
            for old, new, frame in zip(incumbent, challenger, frames, strict=True)
        ]
        if any(old is None or new is None for old, new in by_rows):
            by_rows = None
    if by_rows is not None:

        def on_arrays(take: list[np.ndarray] | None) -> tuple[float, float] | None:
            old_scores, new_scores = [], []
            for (old, new), rows in zip(by_rows, take or [None] * len(by_rows), strict=True):
                try:
                    old_score, new_score = old(rows), new(rows)
                except ValueError:  # e.g. a resample with a single class
                    return None
                if not (np.isfinite(old_score) and np.isfinite(new_score)):
                    return None
                old_scores.append(old_score)
                new_scores.append(new_score)
            return float(np.mean(old_scores)), float(np.mean(new_scores))

        return on_arrays
    pairs = []
    for old, new, frame in zip(incumbent, challenger, frames, strict=True):
        features = blueprint.features(frame)
        pairs.append((_Recorded(old, features), _Recorded(new, features), frame))

    def through_score(take: list[np.ndarray] | None) -> tuple[float, float] | None:
        old_scores, new_scores = [], []
        for (old, new, frame), rows in zip(pairs, take or [None] * len(pairs), strict=True):
            part = frame if rows is None else frame.iloc[rows]
            old.expect(rows)
            new.expect(rows)
            old_score, new_score = _primary(blueprint, old, part), _primary(blueprint, new, part)
            if old_score is None or new_score is None:
                return None
            old_scores.append(old_score)
            new_scores.append(new_score)
        return float(np.mean(old_scores)), float(np.mean(new_scores))

    return through_score
