"""Score one configuration in stages, so a pruner can stop a poor trial early.

How a model can be scored part-way is read from the estimator's capabilities
(the final step of a pipeline), never from a blueprint's or candidate's name:

* ``partial_fit`` (SGD, naive Bayes, ...): the featurisation is fitted once,
  then the learner sees the rows in growing chunks, scored after each;
* ``warm_start`` with ``n_estimators`` (random forests, gradient boosting) or
  with ``max_iter`` and ``early_stopping`` (HistGradientBoosting): more trees
  or boosting rounds are added to the same model at each stage;
* anything else, under k-fold validation: the folds are the stages (the
  running mean after each fold): a trial stopped after one fold saves the rest;
* on a holdout, a prediction limited to the first rounds (``iteration_range``
  in XGBoost, ``num_iteration`` in LightGBM): the model is fitted once, then
  scored at each round count (that prunes without saving the fit, which is
  why k-fold prefers the folds);
* anything else on a holdout: one stage.

``evaluate`` reports the score after each stage (averaged over the folds) to
``report(value, step)``, which raises to stop the trial; it returns the final
metrics, averaged over the folds.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.pipeline import Pipeline

from driftloop.blueprints.base import Blueprint

DEFAULT_STAGES = 4
Folds = list[tuple[pd.DataFrame, pd.DataFrame]]
Report = Callable[[float, int], None]


@dataclass(frozen=True)
class Staging:
    """How a configuration is scored part-way: ``kind`` and the stage resource values."""

    kind: str  # partial_fit | warm_start | staged_predict | folds | single
    parameter: str | None = None  # the set_params name grown at each stage (warm_start)
    values: tuple[int, ...] = ()  # the resource at each stage (rounds, trees, row chunks)
    predict_keyword: str | None = None  # staged_predict: iteration_range | num_iteration
    switch: str | None = None  # warm_start: the set_params name that turns it on

    def steps(self, folds: int) -> int:
        if self.kind == "folds":
            return folds
        if self.kind == "single":
            return 1
        return len(self.values)


def final_step(estimator: Any) -> tuple[str | None, Any]:
    """(set_params prefix, final estimator) of a pipeline; (None, estimator) otherwise."""
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return f"{name}__", last
    return None, estimator


def _ladder(total: int, stages: int) -> tuple[int, ...]:
    """Geometric resource values ending at ``total``: 200 -> (25, 50, 100, 200)."""
    values = sorted({max(1, math.ceil(total / 2**k)) for k in range(stages)})
    return tuple(values)


def _keyword_of(method: Any, names: tuple[str, ...]) -> str | None:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in names if name in parameters), None)


def staging_of(estimator: Any, *, folds: int, stages: int = DEFAULT_STAGES) -> Staging:
    """How ``estimator`` (an unfitted candidate, params already set) can be scored in stages."""
    prefix, final = final_step(estimator)
    prefix = prefix or ""
    params = final.get_params(deep=False)
    if hasattr(final, "partial_fit"):
        return Staging("partial_fit", values=tuple(range(1, stages + 1)))
    if "warm_start" in params:
        switch = f"{prefix}warm_start"
        if isinstance(params.get("n_estimators"), int) and params["n_estimators"] > 1:
            ladder = _ladder(params["n_estimators"], stages)
            return Staging("warm_start", f"{prefix}n_estimators", ladder, switch=switch)
        if "early_stopping" in params and isinstance(params.get("max_iter"), int):
            ladder = _ladder(params["max_iter"], stages)
            return Staging("warm_start", f"{prefix}max_iter", ladder, switch=switch)
    if folds > 1:
        # a model that can only be scored at fewer rounds after a full fit saves nothing when
        # pruned at a round count; under k-fold, stopping after a fold saves the other fits
        return Staging("folds")
    rounds = params.get("n_estimators")
    method = getattr(final, "predict_proba", None) or getattr(final, "predict", None)
    keyword = _keyword_of(method, ("iteration_range", "num_iteration")) if method else None
    if keyword and isinstance(rounds, int) and rounds > 1:
        return Staging("staged_predict", values=_ladder(rounds, stages), predict_keyword=keyword)
    return Staging("single")


class _AtRounds:
    """A fitted model that predicts with its first ``rounds`` boosting rounds only."""

    def __init__(self, model: Any, keyword: str, rounds: int) -> None:
        self._model = model
        self._options = (
            {keyword: (0, rounds)} if keyword == "iteration_range" else {keyword: rounds}
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict_proba(self, features: Any) -> Any:
        return self._model.predict_proba(features, **self._options)

    def predict(self, features: Any) -> Any:
        return self._model.predict(features, **self._options)


def _mean_metrics(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = set.intersection(*(set(s) for s in scores))
    return {key: float(np.mean([s[key] for s in scores])) for key in sorted(keys)}


def fit_and_score(
    template: Any, blueprint: Blueprint, folds: Folds
) -> tuple[dict[str, float], list[Any]]:
    """Fit ``template`` once per fold, unstaged: (metrics averaged over folds, fitted models)."""
    scores, models = [], []
    for fit_rows, score_rows in folds:
        model = clone(template)
        model.fit(blueprint.features(fit_rows), blueprint.targets(fit_rows))
        scores.append(blueprint.score(model, score_rows))
        models.append(model)
    return _mean_metrics(scores), models


def evaluate(
    template: Any,
    blueprint: Blueprint,
    folds: Folds,
    *,
    report: Report | None = None,
    stages: int = DEFAULT_STAGES,
) -> dict[str, float]:
    """Fit ``template`` (unfitted, params set) on each fold and score it, stage by stage.

    ``report(value, step)`` gets the primary metric averaged over the folds
    after each stage (step 1, 2, ...); it raises to stop the trial early.
    Returns every metric of the last stage, averaged over the folds.
    """
    staging = staging_of(template, folds=len(folds), stages=stages)
    primary = blueprint.primary_metric
    send = report or (lambda value, step: None)
    if staging.kind == "partial_fit":
        return _by_partial_fit(template, blueprint, folds, staging, send)
    if staging.kind == "warm_start":
        # the same model per fold keeps its trees/rounds and grows more at each stage
        models = [clone(template).set_params(**{staging.switch: True}) for _ in folds]
        for step, value in enumerate(staging.values, start=1):
            scores = []
            for model, (fit_rows, score_rows) in zip(models, folds, strict=True):
                model.set_params(**{staging.parameter: value})
                model.fit(blueprint.features(fit_rows), blueprint.targets(fit_rows))
                scores.append(blueprint.score(model, score_rows))
            metrics = _mean_metrics(scores)
            send(metrics[primary], step)
        return metrics
    if staging.kind == "staged_predict":
        models = []
        for fit_rows, _ in folds:
            model = clone(template)
            model.fit(blueprint.features(fit_rows), blueprint.targets(fit_rows))
            models.append(model)
        for step, rounds in enumerate(staging.values, start=1):
            scores = [
                blueprint.score(_AtRounds(model, staging.predict_keyword, rounds), score_rows)
                for model, (_, score_rows) in zip(models, folds, strict=True)
            ]
            metrics = _mean_metrics(scores)
            send(metrics[primary], step)
        return metrics
    # folds as stages (or one stage): the running mean after each fold
    scores = []
    for step, (fit_rows, score_rows) in enumerate(folds, start=1):
        model = clone(template)
        model.fit(blueprint.features(fit_rows), blueprint.targets(fit_rows))
        scores.append(blueprint.score(model, score_rows))
        metrics = _mean_metrics(scores)
        send(metrics[primary], step)
    return metrics


def _by_partial_fit(
    template: Any, blueprint: Blueprint, folds: Folds, staging: Staging, send: Report
) -> dict[str, float]:
    """Featurise once per fold, then ``partial_fit`` the learner on growing row chunks."""
    chunks = len(staging.values)
    states = []
    for fit_rows, score_rows in folds:
        model = clone(template)
        features, targets = blueprint.features(fit_rows), blueprint.targets(fit_rows)
        if isinstance(model, Pipeline):
            prefix = Pipeline([*model.steps[:-1], ("done", "passthrough")], memory=model.memory)
            transformed = prefix.fit_transform(features, targets)
            learner = model.steps[-1][1]
            fitted = Pipeline([*prefix.steps[:-1], (model.steps[-1][0], learner)])
        else:
            transformed, learner, fitted = features, model, model
        order = np.random.default_rng(0).permutation(len(targets))
        states.append((fitted, learner, transformed, np.asarray(targets), order, score_rows))
    for step in range(1, chunks + 1):
        scores = []
        for fitted, learner, transformed, targets, order, score_rows in states:
            rows = np.array_split(order, chunks)[step - 1]
            options = {"classes": np.unique(targets)} if is_classifier(learner) else {}
            learner.partial_fit(_take(transformed, rows), targets[rows], **options)
            scores.append(blueprint.score(fitted, score_rows))
        metrics = _mean_metrics(scores)
        send(metrics[blueprint.primary_metric], step)
    return metrics


def _take(matrix: Any, rows: np.ndarray) -> Any:
    if isinstance(matrix, pd.DataFrame | pd.Series):
        return matrix.iloc[rows]
    if isinstance(matrix, list):
        return [matrix[i] for i in rows]
    return matrix[rows]
