"""Ensembles over a blueprint's best candidates: voting, averaging and stacking.

:func:`ensemble_candidates` takes the candidates a search fitted on the train
rows and builds, over the top few (by the blueprint's primary metric and
direction):

* classification (the blueprint has a ``class_column``): ``soft_voting`` (a
  weighted mean of the members' probabilities; only members with
  ``predict_proba``), ``hard_voting`` (a weighted majority of their labels) and
  ``stacking`` (a logistic regression over the members' out-of-fold
  probabilities, members refitted as clones);
* regression: ``weighted_average`` and ``stacking`` (a ridge regression over
  the members' out-of-fold predictions).

Members must be sklearn classifiers (resp. regressors); anything else
(clusterers, anomaly detectors) gets no ensemble.

Voting weights come from the members' validation scores. Rows ordered in
time (the blueprint names a ``time_column``) get no stacking: shuffled folds
would score members on rows earlier than the ones they were fitted on. Every
ensemble is scored with ``blueprint.score`` on the validation rows; the caller
keeps one only when it beats the best single candidate.

Shape of the result: the members' leading steps that are configured alike
(a table's ``TableSchema``, a text model's normaliser and TF-IDF when the
members share them) are fitted on the same rows and therefore compute the same
thing, so the ensemble keeps one copy (the best member's) in front:
``Pipeline([*shared steps, ("ensemble", <ensemble over the rest of each member>)])``.
That keeps what serving and drift read from a model (the first step, the
featurisation before the final step, ``classes_``, ``predict_proba``), and the
shared featurisation runs once per request instead of once per member. An
ensemble the blueprint cannot serve or watch (its ``codec`` or
``drift_featurizer`` rejects it) is not offered.

Portability: a logged ensemble unpickles this module, so it imports only
numpy, pandas and scikit-learn at module level (see ``model_logging``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    clone,
    is_classifier,
    is_regressor,
)
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

if TYPE_CHECKING:
    from driftloop.blueprints import Blueprint
    from driftloop.training.candidates import CandidateResult

log = logging.getLogger(__name__)

ENSEMBLE_STEP = "ensemble"
SOFT_VOTING = "soft_voting"
HARD_VOTING = "hard_voting"
STACKING = "stacking"
WEIGHTED_AVERAGE = "weighted_average"
# out-of-fold predictions for the stacking meta-model
STACKING_FOLDS = 5
# a score at or below zero still gets a (negligible) say in a weighted vote
_MIN_WEIGHT_SCORE = 1e-9


# --- the estimators --------------------------------------------------------------
def _members_fitted(estimators: Sequence[tuple[str, Any]], X: Any, y: Any) -> list[Any]:
    return [clone(estimator).fit(X, y) for _, estimator in estimators]


def _normalised(weights: Sequence[float] | None, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    values = np.asarray(weights, dtype=float)
    if values.shape != (count,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"weights must be {count} finite non-negative numbers, got {weights!r}")
    if values.sum() <= 0:
        raise ValueError("weights must not all be zero")
    return values / values.sum()


class WeightedVotingClassifier(ClassifierMixin, BaseEstimator):
    """A weighted vote of classifiers that take string labels.

    ``voting="soft"``: the weighted mean of the members' ``predict_proba``
    (every member needs it). ``voting="hard"``: each member's predicted label
    counts its weight; ``predict_proba`` is then the weighted share of votes
    per class (what serving and scoring read), not a calibrated probability.
    Members' classes are aligned by name, so their column orders may differ.
    """

    def __init__(
        self,
        estimators: Sequence[tuple[str, Any]],
        weights: Sequence[float] | None = None,
        voting: str = "soft",
    ) -> None:
        self.estimators = estimators
        self.weights = weights
        self.voting = voting

    def fit(self, X: Any, y: Any) -> WeightedVotingClassifier:
        self._check_voting()
        return self._with_members(_members_fitted(self.estimators, X, y))

    @classmethod
    def from_fitted(
        cls,
        estimators: Sequence[tuple[str, Any]],
        weights: Sequence[float] | None = None,
        voting: str = "soft",
    ) -> WeightedVotingClassifier:
        """An ensemble over already-fitted members (they are used as they are, not refitted)."""
        ensemble = cls([(name, clone(est)) for name, est in estimators], weights, voting)
        ensemble._check_voting()
        return ensemble._with_members([est for _, est in estimators])

    def _check_voting(self) -> None:
        if self.voting not in ("soft", "hard"):
            raise ValueError(f"voting must be 'soft' or 'hard', got {self.voting!r}")

    def _with_members(self, members: list[Any]) -> WeightedVotingClassifier:
        if self.voting == "soft":
            lacking = [
                name
                for (name, _), member in zip(self.estimators, members, strict=True)
                if not hasattr(member, "predict_proba")
            ]
            if lacking:
                raise ValueError(f"soft voting needs predict_proba; {', '.join(lacking)} lack it")
        self.estimators_ = members
        self.weights_ = _normalised(self.weights, len(members))
        self.classes_ = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
        return self

    def _column_of(self, labels: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes_, labels)

    def predict_proba(self, X: Any) -> np.ndarray:
        rows = None
        total = None
        for member, weight in zip(self.estimators_, self.weights_, strict=True):
            if self.voting == "soft":
                share = np.asarray(member.predict_proba(X), dtype=float)
                columns = self._column_of(np.asarray(member.classes_))
            else:
                predicted = np.asarray(member.predict(X))
                rows = len(predicted)
                share = np.ones((rows, 1))
                columns = None
            if total is None:
                total = np.zeros((share.shape[0], len(self.classes_)))
            if columns is not None:
                total[:, columns] += weight * share
            else:
                total[np.arange(rows), self._column_of(predicted)] += weight
        return total

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class WeightedAverageRegressor(RegressorMixin, BaseEstimator):
    """The weighted mean of regressors' predictions."""

    def __init__(
        self, estimators: Sequence[tuple[str, Any]], weights: Sequence[float] | None = None
    ) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X: Any, y: Any) -> WeightedAverageRegressor:
        return self._with_members(_members_fitted(self.estimators, X, y))

    @classmethod
    def from_fitted(
        cls, estimators: Sequence[tuple[str, Any]], weights: Sequence[float] | None = None
    ) -> WeightedAverageRegressor:
        """An average over already-fitted members (used as they are, not refitted)."""
        ensemble = cls([(name, clone(est)) for name, est in estimators], weights)
        return ensemble._with_members([est for _, est in estimators])

    def _with_members(self, members: list[Any]) -> WeightedAverageRegressor:
        self.estimators_ = members
        self.weights_ = _normalised(self.weights, len(members))
        return self

    def predict(self, X: Any) -> np.ndarray:
        predictions = np.column_stack(
            [np.asarray(member.predict(X), dtype=float).ravel() for member in self.estimators_]
        )
        return predictions @ self.weights_


# --- shared leading steps --------------------------------------------------------
def _same_value(a: Any, b: Any) -> bool:
    """Equal parameter values; estimators inside count as equal by type (a deep
    ``get_params`` lists their own parameters separately)."""
    if hasattr(a, "get_params") or hasattr(b, "get_params"):
        return type(a) is type(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        # e.g. a FeatureUnion's transformer_list: [(name, estimator), ...]
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and other values without a plain ==
        return a is b


def _same_configuration(a: Any, b: Any) -> bool:
    """Whether two (unfitted or fitted) estimators are configured alike, parameter by parameter."""
    if type(a) is not type(b) or not hasattr(a, "get_params"):
        return False
    params_a, params_b = a.get_params(deep=True), b.get_params(deep=True)
    if params_a.keys() != params_b.keys():
        return False
    return all(_same_value(value, params_b[key]) for key, value in params_a.items())


def shared_steps(members: Sequence[Any]) -> int:
    """How many leading Pipeline steps every member has alike (never a member's last step)."""
    if not members or not all(isinstance(m, Pipeline) for m in members):
        return 0
    first = members[0]
    limit = min(len(m.steps) for m in members) - 1
    count = 0
    while count < limit:
        name, step = first.steps[count]
        if not all(
            m.steps[count][0] == name and _same_configuration(m.steps[count][1], step)
            for m in members[1:]
        ):
            break
        count += 1
    return count


def _tail(member: Any, start: int) -> Any:
    """What follows the shared steps: a Pipeline of the rest, or the final estimator alone."""
    if start == 0:
        return member
    rest = member.steps[start:]
    return rest[0][1] if len(rest) == 1 else Pipeline(rest)


def _wrapped(prefix: list[tuple[str, Any]], ensemble: Any) -> Any:
    return Pipeline([*prefix, (ENSEMBLE_STEP, ensemble)]) if prefix else ensemble


def voting_ensemble(
    members: Sequence[tuple[str, Any]],
    weights: Sequence[float] | None = None,
    voting: str = "soft",
) -> Any:
    """A vote (``"soft"``/``"hard"``) or, for regressors (``voting="average"``), a weighted
    mean over fitted members, their shared leading steps kept once in front."""
    start = shared_steps([member for _, member in members])
    prefix = list(members[0][1].steps[:start]) if start else []
    tails = [(name, _tail(member, start)) for name, member in members]
    if voting == "average":
        return _wrapped(prefix, WeightedAverageRegressor.from_fitted(tails, weights))
    return _wrapped(prefix, WeightedVotingClassifier.from_fitted(tails, weights, voting))


# --- weights from scores -----------------------------------------------------------
def score_weights(scores: Sequence[float], greater_is_better: bool) -> list[float]:
    """Voting weights proportional to a score (or to its inverse when lower is better)."""
    values = np.clip(np.asarray(scores, dtype=float), _MIN_WEIGHT_SCORE, None)
    raw = values if greater_is_better else 1.0 / values
    return [float(w) for w in raw / raw.sum()]


# --- building ------------------------------------------------------------------------
def _stacking_cv(blueprint: Blueprint, train: pd.DataFrame, seed: int):
    """Folds for the out-of-fold predictions, or None when the train rows cannot make two."""
    if blueprint.class_column is not None:
        smallest = int(pd.Series(blueprint.targets(train)).value_counts().min())
        folds = min(STACKING_FOLDS, smallest)
        return StratifiedKFold(folds, shuffle=True, random_state=seed) if folds >= 2 else None
    folds = min(STACKING_FOLDS, len(train))
    return KFold(folds, shuffle=True, random_state=seed) if folds >= 2 else None


def _stacking(
    blueprint: Blueprint,
    members: list[tuple[str, Any]],
    start: int,
    train: pd.DataFrame,
    seed: int,
) -> Any | None:
    if blueprint.time_column:
        # out-of-fold predictions need every row scored by a model that did not see it,
        # and rows ordered in time may only be scored by models fitted on earlier rows
        log.info("stacking skipped: rows ordered in time have no out-of-fold predictions")
        return None
    cv = _stacking_cv(blueprint, train, seed)
    if cv is None:
        log.info("stacking skipped: the train rows cannot make two folds")
        return None
    prefix = [(name, clone(step)) for name, step in members[0][1].steps[:start]] if start else []
    tails = [(name, clone(_tail(member, start))) for name, member in members]
    if blueprint.class_column is not None:
        # balanced: the members are ranked by metrics such as macro-F1 that weigh
        # rare classes as much as common ones
        meta = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
        stack = StackingClassifier(tails, final_estimator=meta, cv=cv)
    else:
        stack = StackingRegressor(tails, final_estimator=Ridge(alpha=1.0), cv=cv)
    # The shared steps (schema, normalisation, TF-IDF) learn no labels, so fitting
    # them once on all train rows leaves the members' out-of-fold outputs fair.
    model = _wrapped(prefix, stack)
    return model.fit(blueprint.features(train), blueprint.targets(train))


def _servable(blueprint: Blueprint, model: Any, val: pd.DataFrame) -> str | None:
    """Why the blueprint cannot serve or watch ``model`` (None: it can)."""
    try:
        blueprint.codec(model)
        blueprint.drift_featurizer(model, val)
    except Exception as exc:  # noqa: BLE001 - any refusal means: do not offer it
        return f"{type(exc).__name__}: {exc}"
    return None


def _ranked(
    blueprint: Blueprint, fitted: dict[str, Any], results: list[CandidateResult]
) -> list[CandidateResult]:
    primary = blueprint.primary_metric
    usable = [
        r
        for r in results
        if r.name in fitted and math.isfinite(float(r.metrics.get(primary, math.nan)))
    ]
    # stable sort: equal scores keep the declaration order
    return sorted(
        usable,
        key=lambda r: float(r.metrics[primary]),
        reverse=blueprint.greater_is_better,
    )


def ensemble_candidates(
    blueprint: Blueprint,
    fitted: dict[str, Any],
    results: list[CandidateResult],
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    top: int = 3,
    seed: int = 42,
    stacking: bool = True,
) -> list[tuple[str, Any, dict[str, float]]]:
    """Ensembles over the ``top`` candidates, each with its validation metrics
    (``stacking=False``: the votes only, which refit nothing: a tight time budget).

    ``fitted`` maps candidate names to estimators fitted on ``train``;
    ``results`` holds their validation metrics. Returns ``(name, estimator,
    blueprint.score(estimator, val))`` for every ensemble that could be built
    and served; empty when fewer than two candidates qualify. An ensemble that
    fails to build is logged and left out, never raised: a failed extra must
    not fail the training.
    """
    chosen = _ranked(blueprint, fitted, results)[: max(top, 0)]
    if len(chosen) < 2:
        return []
    # votes and stacks combine classifiers, averages combine regressors; cluster ids
    # and anomaly scores have no such combination (their members are neither)
    kind = is_classifier if blueprint.class_column is not None else is_regressor
    others = [r.name for r in chosen if not kind(fitted[r.name])]
    if others:
        log.info("no ensembles: %s %s", ", ".join(others), f"not {kind.__name__[3:]}s")
        return []
    primary = blueprint.primary_metric
    members = [(r.name, fitted[r.name]) for r in chosen]
    weights = score_weights([r.metrics[primary] for r in chosen], blueprint.greater_is_better)
    start = shared_steps([member for _, member in members])

    builders: dict[str, Any] = {}
    if blueprint.class_column is not None:
        with_proba = [
            (pair, w)
            for pair, w in zip(members, weights, strict=True)
            if hasattr(pair[1], "predict_proba")
        ]
        if len(with_proba) >= 2:
            builders[SOFT_VOTING] = lambda: voting_ensemble(
                [pair for pair, _ in with_proba], [w for _, w in with_proba], "soft"
            )
        else:
            log.info("soft voting skipped: fewer than two of the top candidates have predict_proba")
        builders[HARD_VOTING] = lambda: voting_ensemble(members, weights, "hard")
    else:
        builders[WEIGHTED_AVERAGE] = lambda: voting_ensemble(members, weights, "average")
    if stacking:
        builders[STACKING] = lambda: _stacking(blueprint, members, start, train, seed)

    built: list[tuple[str, Any, dict[str, float]]] = []
    names = ", ".join(name for name, _ in members)
    for name, build in builders.items():
        try:
            model = build()
            if model is None:
                continue
            metrics = blueprint.score(model, val)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("ensemble %s over %s failed: %s: %s", name, names, type(exc).__name__, exc)
            continue
        refusal = _servable(blueprint, model, val)
        if refusal is not None:
            log.warning("ensemble %s over %s not offered: %s", name, names, refusal)
            continue
        log.info("ensemble %s over %s: val %s=%.4f", name, names, primary, metrics[primary])
        built.append((name, model, metrics))
    return built
