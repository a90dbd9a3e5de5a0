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

The level is strict (0.01, not 0.05) because the challenger is the best of many
configurations scored on the same rows: its validation edge is biased upwards by
the selection itself (measured: a tuned LightGBM on attrition, best of ~25
trials, beat its defaults on validation at p = 0.04 and lost on the test rows).
With ``max_seconds`` the resampling stops when the time is up; fewer resamples
can only raise the p-value, so a test cut short keeps the incumbent.

Each model predicts once per fold: a resample reads its rows from the recorded
predictions (``_Recorded``), so the bootstrap costs the metric computations only.
Seeded: the same inputs give the same verdict.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.base import Blueprint

DEFAULT_LEVEL = 0.01
# with the add-one p-value, 100 resamples can reach p = 1/101 < 0.01 (all of them favour
# the challenger); fewer cannot
DEFAULT_RESAMPLES = 100
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
    level: float
    resamples: int

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
            f"paired bootstrap p={self.p_value:.3f} "
            f"({self.resamples} resamples, level {self.level:g})"
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
            index = getattr(features, "index", None)
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
    resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    max_seconds: float | None = None,
) -> Verdict:
    """Test whether ``challenger`` beats ``incumbent`` on the validation ``frames``.

    ``incumbent[i]`` and ``challenger[i]`` are fitted models scored on ``frames[i]``
    (one per fold; a holdout is one fold). The score of a model is the blueprint's
    primary metric averaged over the folds, as the search ranks it.
    """
    if not (len(incumbent) == len(challenger) == len(frames)) or not frames:
        raise ValueError("one incumbent model and one challenger model per validation fold")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    frames = [frame.reset_index(drop=True) for frame in frames]
    pairs = []
    for old, new, frame in zip(incumbent, challenger, frames, strict=True):
        features = blueprint.features(frame)
        pairs.append((_Recorded(old, features), _Recorded(new, features), frame))

    def scores(take: list[np.ndarray] | None) -> tuple[float, float] | None:
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

    full = scores(None)
    if full is None:
        raise ValueError(f"{blueprint.primary_metric} cannot be computed on the validation rows")
    rng = np.random.default_rng(seed)
    not_better, counted = 0, 0
    started = time.perf_counter()
    for _ in range(resamples):
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
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
        names[0], names[1], blueprint.primary_metric, full[0], full[1], p_value, level, counted
    )
