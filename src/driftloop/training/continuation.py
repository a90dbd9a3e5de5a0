"""Continue a registered version's fitted learner on new rows (the real warm start).

``--warm-start NAME[@ALIAS|/VERSION]`` enqueues the version's tuned
hyperparameters as a first trial (``training.warm_start``); where the
version's learner allows it, the search also gets one more candidate,
``<candidate>+continued``: the version's fitted model, its preprocessing kept
as fitted, its learner continued on the new training rows --

* a learner that says how (``fitted_rounds()`` and ``continue_fit(X, y, rounds)``,
  e.g. driftloop's ``StringLabelXGBClassifier``);
* LightGBM: ``fit(..., init_model=<old booster>)``, more boosting rounds;
* XGBoost: ``fit(..., xgb_model=<old booster>)``, more boosting rounds;
* scikit-learn tree ensembles with ``warm_start``: more trees (random forests,
  gradient boosting: ``n_estimators``), the fitted ones kept. HistGradientBoosting
  is not: its warm start re-bins the new rows, and its fitted trees' bin
  thresholds no longer hold on them (said in the tag).

What can be continued is read from the learner's capabilities, never from a
blueprint's or candidate's name; whether a version's model fits the new rows
(its columns, its classes) is the blueprint's question
(``Blueprint.continuation``). The candidate is scored on validation like
every other and wins only through the same selection rule, so continuing can
add an option, never replace the search. When the version cannot be continued
the reason goes in the warm-start tag and the search runs without it.

Caveat worth knowing when reading its validation score: the old model may have
been fitted on rows that are in the new validation split (a version refit on
train + validation, or a dataset that grew); the test split, held out by id, is
what the gate judges on.

``ContinuedModel`` is the candidate: an unfitted sklearn estimator (``clone``
and ``fit`` work like any other candidate's) whose fit continues a copy of the
frozen start model; ``served`` unwraps it into the plain fitted pipeline that is
logged and served. This module imports only numpy and scikit-learn at module
level (the portability rule of ``training.model_logging``).
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if

SUFFIX = "+continued"
# rounds (or trees) added, as a share of the version's: enough for the new rows to correct
# the model, not so many that the continuation outweighs what the version learned
ADDED_SHARE = 0.5


class CannotContinue(ValueError):
    """Why a version's model is not continued (said in the warm-start tag, never raised
    out of a training)."""


@dataclass(frozen=True)
class Learner:
    """How one fitted learner is continued."""

    kind: str  # protocol | lightgbm | xgboost | warm_start
    unit: str  # rounds | trees
    rounds: int  # fitted rounds (or trees)
    parameter: str | None = None  # warm_start: the parameter that counts them


def continued_name(candidate: str) -> str:
    return f"{candidate}{SUFFIX}"


def _takes(method: Any, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def learner_of(model: Any) -> tuple[list[tuple[str, Any]], str | None, Any]:
    """(preprocessing steps, learner step name, learner) of a fitted model."""
    if isinstance(model, Pipeline):
        *head, (name, learner) = model.steps
        return list(head), name, learner
    return [], None, model


def describe(learner: Any) -> Learner:
    """How ``learner`` (fitted) can be continued; ``CannotContinue`` when it cannot."""
    kind = type(learner).__name__
    if callable(getattr(learner, "continue_fit", None)) and callable(
        getattr(learner, "fitted_rounds", None)
    ):
        return Learner("protocol", "rounds", int(learner.fitted_rounds()))
    booster = getattr(learner, "booster_", None)
    if booster is not None and hasattr(booster, "current_iteration"):
        if _takes(learner.fit, "init_model"):
            return Learner("lightgbm", "rounds", int(booster.current_iteration()))
    if callable(getattr(learner, "get_booster", None)) and _takes(learner.fit, "xgb_model"):
        try:
            rounds = int(learner.get_booster().num_boosted_rounds())
        except Exception as exc:  # an unfitted XGBoost model raises its own NotFitted
            raise CannotContinue(f"its {kind} is not fitted ({exc})") from None
        return Learner("xgboost", "rounds", rounds)
    params = learner.get_params(deep=False) if hasattr(learner, "get_params") else {}
    if "warm_start" in params:
        fitted = getattr(learner, "estimators_", None)
        if fitted is not None and isinstance(params.get("n_estimators"), int):
            rounds = int(getattr(learner, "n_estimators_", len(fitted)))
            return Learner("warm_start", "trees", rounds, "n_estimators")
        if hasattr(learner, "_bin_mapper"):
            # HistGradientBoosting's warm start scores its fitted trees on the new rows by
            # bin index, and bins every fit's rows afresh: on other rows the old trees'
            # bins no longer mean their thresholds (penguins: accuracy 0.97 -> 0.69 after
            # 50 more iterations on the rows it was scored on), so it is not continued
            raise CannotContinue(
                f"its learner {kind} bins the rows of every fit afresh: its fitted "
                "iterations cannot be continued on other rows"
            )
    raise CannotContinue(
        f"its learner {kind} cannot be continued (no booster to start from, no warm_start "
        "growing more trees)"
    )


def added_rounds(fitted: int) -> int:
    return max(1, math.ceil(fitted * ADDED_SHARE))


def _threads(params: dict[str, Any]) -> dict[str, Any]:
    """The version's thread count was for the machine it trained on: this one's."""
    if "n_jobs" not in params:
        return {}
    from driftloop.training.budget import fit_threads

    return {"n_jobs": fit_threads()}


def continue_learner(learner: Any, X: Any, y: Any, rounds: int) -> tuple[Any, dict[str, Any]]:
    """A copy of ``learner`` (fitted) continued on ``X``/``y`` by ``rounds`` more rounds
    (or trees): (continued learner, what was continued). ``learner`` is unchanged."""
    how = describe(learner)
    params = learner.get_params(deep=False) if hasattr(learner, "get_params") else {}
    if how.kind == "protocol":
        grown = copy.deepcopy(learner)
        grown.continue_fit(X, y, rounds)
        total = int(grown.fitted_rounds())
    elif how.kind == "lightgbm":
        from sklearn.base import clone

        grown = clone(learner).set_params(n_estimators=rounds, **_threads(params))
        grown.fit(X, y, init_model=learner.booster_)
        total = int(grown.booster_.current_iteration())
    elif how.kind == "xgboost":
        from sklearn.base import clone

        grown = clone(learner).set_params(n_estimators=rounds, **_threads(params))
        grown.fit(X, y, xgb_model=learner.get_booster())
        total = int(grown.get_booster().num_boosted_rounds())
    else:
        grown = copy.deepcopy(learner)
        switch = params["warm_start"]
        grown.set_params(
            warm_start=True, **{how.parameter: how.rounds + rounds}, **_threads(params)
        )
        grown.fit(X, y)
        # back as it was: a later fit of the served model starts afresh, as its params say
        grown.set_params(warm_start=switch)
        total = int(getattr(grown, "n_estimators_", len(grown.estimators_)))
    return grown, {
        "learner": type(learner).__name__,
        "unit": how.unit,
        "old": how.rounds,
        "added": total - how.rounds,
        "total": total,
    }


def continue_model(model: Any, X: Any, y: Any, rounds: int) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` (a fitted pipeline or learner) whose fitted preprocessing
    transforms ``X`` as it is and whose learner is continued on it."""
    head, name, learner = learner_of(model)
    if head:
        X = Pipeline(copy.deepcopy(head)).transform(X)
    grown, summary = continue_learner(learner, X, y, rounds)
    if name is None:
        return grown, summary
    return Pipeline([*copy.deepcopy(head), (name, grown)]), summary


class Frozen:
    """A fitted model held as a parameter: ``clone`` shares it (a deep copy would copy a
    booster per fold and trial for nothing; the continuation copies it once, itself)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __deepcopy__(self, memo: dict) -> Frozen:
        return self

    def __repr__(self) -> str:
        return f"Frozen({type(self.model).__name__})"


def _start_has(name: str):
    return lambda self: hasattr(self.start.model, name)


class ContinuedModel(BaseEstimator):
    """A candidate that continues ``start`` (a ``Frozen`` fitted model) by ``rounds`` on
    the rows it is fitted on; predicts with the continued model (``model_``)."""

    def __init__(self, start: Frozen | None = None, rounds: int = 1, source: str = ""):
        self.start = start
        self.rounds = rounds
        self.source = source  # the version it starts from (NAME/VERSION), for the record

    def fit(self, X: Any, y: Any = None) -> ContinuedModel:
        if self.start is None:
            raise ValueError("ContinuedModel needs a fitted model to start from")
        self.model_, self.summary_ = continue_model(self.start.model, X, y, self.rounds)
        return self

    @property
    def classes_(self) -> np.ndarray:
        return self.model_.classes_

    def predict(self, X: Any, **options: Any) -> Any:
        return self.model_.predict(X, **options)

    @available_if(_start_has("predict_proba"))
    def predict_proba(self, X: Any, **options: Any) -> Any:
        return self.model_.predict_proba(X, **options)

    @available_if(_start_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        return self.model_.decision_function(X)

    def __sklearn_tags__(self):
        # a classifier or regressor as the model it continues is (ensembles, scorers ask)
        if self.start is not None and hasattr(self.start.model, "__sklearn_tags__"):
            return self.start.model.__sklearn_tags__()
        return super().__sklearn_tags__()

    def record(self) -> dict[str, Any]:
        """What the candidate continues, for its run and the warm-start tag."""
        _, _, learner = learner_of(self.start.model)
        how = describe(learner)
        planned = {
            "from": self.source,
            "learner": type(learner).__name__,
            "unit": how.unit,
            f"old_{how.unit}": how.rounds,
            f"added_{how.unit}": self.rounds,
        }
        return planned


def served(model: Any) -> Any:
    """The model to log and serve: a fitted ``ContinuedModel``'s plain continued model."""
    return model.model_ if isinstance(model, ContinuedModel) else model


def column_difference(expected: Any, given: Any) -> str:
    """Why two column lists differ ("": the same columns)."""
    expected, given = [str(c) for c in expected], [str(c) for c in given]
    lacking = [c for c in expected if c not in given]
    extra = [c for c in given if c not in expected]
    parts = []
    if lacking:
        parts.append(f"the new rows lack {', '.join(map(repr, lacking[:10]))}")
    if extra:
        parts.append(f"the new rows add {', '.join(map(repr, extra[:10]))}")
    return "; ".join(parts)


def continuation_of(model: Any, features: Any, targets: Any, *, source: str = "") -> Any:
    """The unfitted candidate that continues ``model`` on rows like ``features`` /
    ``targets``; ``CannotContinue`` (why) when the learner cannot be continued or the
    rows do not fit it (other columns, other classes)."""
    _, _, learner = learner_of(model)
    how = describe(learner)
    try:
        columns = getattr(model, "feature_names_in_", None)
    except AttributeError:  # a pipeline whose first step recorded none
        columns = None
    if columns is not None and hasattr(features, "columns"):
        differ = column_difference(columns, features.columns)
        if differ:
            raise CannotContinue(f"columns differ: {differ}")
    classes = getattr(model, "classes_", None)
    if targets is not None and classes is not None:
        old = sorted(str(c) for c in np.asarray(classes).tolist())
        new = sorted({str(c) for c in np.asarray(targets).tolist()})
        if old != new:
            raise CannotContinue(
                f"classes differ: the version knows {old[:10]}, the new rows hold {new[:10]}"
            )
    return ContinuedModel(Frozen(model), added_rounds(how.rounds), source)
