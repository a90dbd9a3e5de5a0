"""Candidate search: fit every candidate of a blueprint, keep the best, log it all.

MLflow layout of one training: a parent run (the winner's model under
artifact path ``model``, its validation metrics, split fingerprints, the
validation strategy and the search settings as tags, the train and validation
frames as dataset inputs) with one nested child run per candidate (params,
validation metrics, fit seconds). With a search (``search=`` settings, see
``training.presets``), every candidate's run holds its Optuna trials as nested
runs (``training.search``); the legacy ``hpo_trials`` tunes only the winner, in
an ``hpo`` child run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from driftloop.blueprints import Blueprint, ParamChoice, ParamRange, get_blueprint
from driftloop.blueprints.base import LIGHT, TIERS
from driftloop.datasets.files import read_frame
from driftloop.lineage import (
    TAG_BEST_CANDIDATE,
    TAG_BLUEPRINT,
    TAG_CANDIDATE,
    TAG_DATASET_FINGERPRINT,
    TAG_HPO,
    TAG_OPTUNA_STORAGE,
    TAG_OPTUNA_STUDIES,
    TAG_PRIMARY_METRIC,
    TAG_SEARCH,
    TAG_SEARCH_PRESET,
    TAG_SEARCH_PRUNER,
    TAG_SEARCH_SAMPLER,
    TAG_SEED,
    TAG_SPLIT_SCHEME,
    TAG_VALIDATION,
    TAG_VALIDATION_FOLDS,
    TAG_VALIDATION_REASON,
    runtime_tag,
    runtime_versions,
    split_fingerprint_tag,
    tag_key,
)
from driftloop.settings import Settings, get_settings
from driftloop.training.budget import (
    ENSEMBLE_RESERVE_SHARE,
    TimeBudget,
    ensemble_seconds,
    fit_threads,
    logging_seconds,
    record_logging_seconds,
)
from driftloop.training.continuation import served
from driftloop.training.presets import SearchPlan, SearchSettings, default_plan
from driftloop.training.search import masked_storage_url, storage_url
from driftloop.training.significance import Verdict, paired_bootstrap
from driftloop.training.staged import fit_and_score
from driftloop.training.validation import (
    ValidationChoice,
    choose_validation,
    folds_of,
    refit_rows,
)

log = logging.getLogger(__name__)

MODEL_ARTIFACT_PATH = "model"
# training-runtime packages recorded on the run (and by the registry on versions)


@dataclass
class CandidateResult:
    name: str
    metrics: dict[str, float]
    params: dict[str, str]
    fit_seconds: float
    run_id: str | None = None
    # the search's best params for this candidate, when they beat its defaults
    tuned_params: dict[str, Any] = field(default_factory=dict)
    trials: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    model: Any
    best_candidate: str
    candidates: list[CandidateResult]
    val_metrics: dict[str, float] = field(default_factory=dict)
    experiment_id: str | None = None
    tuned_params: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-serialisable summary (everything but the model object)."""
        return {
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "best_candidate": self.best_candidate,
            "val_metrics": self.val_metrics,
            "experiment_id": self.experiment_id,
            "tuned_params": {k: _jsonable(v) for k, v in self.tuned_params.items()},
            "search": self.search,
            "candidates": [_jsonable_dict(asdict(candidate)) for candidate in self.candidates],
        }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _jsonable_dict(data: dict) -> dict:
    data["tuned_params"] = {k: _jsonable(v) for k, v in data.get("tuned_params", {}).items()}
    return data


# --- MLflow plumbing ---------------------------------------------------------
def use_tracking(settings: Settings | None = None) -> str:
    """Point MLflow at the configured tracking URI (MLFLOW_TRACKING_URI wins)."""
    import mlflow

    settings = settings or get_settings()
    uri = settings.resolved_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str, settings: Settings | None = None) -> str:
    """The experiment id for ``name``, creating it if needed.

    With a local (sqlite/file) backend MLflow would put artifacts in ./mlruns
    of whatever directory the process runs in; they belong under DRIFTLOOP_HOME.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    client = mlflow.MlflowClient()
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        return existing.experiment_id
    location = None
    uri = mlflow.get_tracking_uri()
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        location = (settings.artifact_root / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # another process created it between our lookup and create
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def loggable_params(estimator: Any) -> dict[str, str]:
    """The hyperparameters worth reading on a run: classifier and featurisation knobs."""
    interesting = ("ngram_range", "max_features", "min_df", "analyzer", "sublinear_tf", "languages")
    params = {}
    for key, value in estimator.get_params(deep=True).items():
        if not isinstance(value, (int, float, str, bool, tuple, type(None))):
            continue
        if key.startswith("classifier__") or key.endswith(interesting):
            params[key] = str(value)[:500]
    return dict(sorted(params.items()))


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}{name}": float(value) for name, value in metrics.items()}


# --- search ------------------------------------------------------------------
def _fit(estimator: Any, blueprint: Blueprint, frame: pd.DataFrame) -> float:
    started = time.perf_counter()
    estimator.fit(blueprint.features(frame), blueprint.targets(frame))
    return time.perf_counter() - started


def _check_frames(blueprint: Blueprint, train: pd.DataFrame, val: pd.DataFrame) -> None:
    target = blueprint.target_column
    for name, frame in (("train", train), ("val", val)):
        if target is not None and target not in frame.columns:  # None: an unsupervised task
            raise ValueError(f"{name} frame lacks the target column {target!r}")
        if frame.empty:
            raise ValueError(f"{name} frame has no rows")
    classes = blueprint.class_column
    if classes is not None and train[classes].nunique() < 2:
        raise ValueError(
            f"train frame has a single class ({train[classes].iloc[0]!r}); need at least two"
        )


def suggest(trial: Any, key: str, space: ParamRange | ParamChoice) -> Any:
    """One Optuna suggestion for a tuning-space entry."""
    if isinstance(space, ParamChoice):
        return trial.suggest_categorical(key, list(space.choices))
    if space.integer:
        return trial.suggest_int(key, int(space.low), int(space.high), log=space.log)
    return trial.suggest_float(key, space.low, space.high, log=space.log)


def tune(
    blueprint: Blueprint,
    name: str,
    template: Any,
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    seed: int,
    n_trials: int,
) -> tuple[dict[str, Any], float | None, list[float]]:
    """Optuna search over the blueprint's tuning space for one candidate.

    Returns (best params, best validation score, every trial's score).
    """
    space = blueprint.tuning_space(name)
    if not space or n_trials <= 0:
        return {}, None, []
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        params = {key: suggest(trial, key, r) for key, r in space.items()}
        model = clone(template).set_params(**params)
        _fit(model, blueprint, train)
        return blueprint.score(model, val)[blueprint.primary_metric]

    study = optuna.create_study(
        direction="maximize" if blueprint.greater_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    study.optimize(objective, n_trials=n_trials)
    values = [t.value for t in study.trials if t.value is not None]
    return dict(study.best_params), float(study.best_value), values


def pick_winner(
    blueprint: Blueprint, results: list[CandidateResult], tie_tolerance: float
) -> CandidateResult:
    """Best by the primary metric; near-ties (a difference the validation split
    cannot resolve) go to the earliest-declared candidate."""
    primary = blueprint.primary_metric
    best = results[0]
    for result in results[1:]:
        if blueprint.better(result.metrics[primary], best.metrics[primary]):
            best = result
    top = best.metrics[primary]
    for result in results:  # declaration order
        if abs(result.metrics[primary] - top) <= tie_tolerance:
            return result
    return best


def train_candidates(
    blueprint: Blueprint | str,
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    seed: int = 42,
    experiment: str | None = None,
    settings: Settings | None = None,
    hpo_trials: int = 0,
    fingerprints: dict[str, str] | None = None,
    candidates: list[str] | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    tie_tolerance: float | None = None,
    search: SearchSettings | str | dict | None = None,
    dataset: str = "",
    data_source: str = "",
) -> TrainResult:
    """Fit the blueprint's candidates on ``train``, rank them on ``val``, log to MLflow.

    ``fingerprints`` ({"dataset", "train", "val", "test", "scheme"}) become run tags;
    ``candidates`` restricts the search to those names. ``search`` (settings, or
    their JSON; see ``training.presets``) runs an Optuna study per candidate with
    the preset's budget, sampler, pruner and validation strategy; without it every
    candidate is fitted once and ranked on the validation split, and
    ``hpo_trials`` > 0 tunes the winner alone. Candidates whose validation score
    is within ``tie_tolerance`` of the best (default: one validation row's worth,
    1/len(val)) count as tied, and the tie goes to the one the blueprint declares
    first (its simpler, cheaper-to-serve choice). ``dataset`` / ``data_source``
    name where the rows came from (the MLflow dataset inputs' name and source).
    """
    import mlflow

    from driftloop.training.model_logging import log_model

    called = time.perf_counter()  # a time budget bounds the whole call
    blueprint = get_blueprint(blueprint)
    settings = settings or get_settings()
    _check_frames(blueprint, train, val)
    pool = blueprint.candidates(seed)
    if candidates:
        unknown = sorted(set(candidates) - set(pool))
        if unknown:
            raise ValueError(
                f"unknown candidate(s) {', '.join(unknown)} for blueprint {blueprint.name!r}; "
                f"known: {', '.join(pool)}"
            )
    if isinstance(search, str | dict):
        search = SearchSettings.parse(search)
    plan = search.plan(blueprint, pool) if search is not None else default_plan(pool, candidates)
    if search is not None and candidates and not search.candidates:
        plan = replace(plan, candidates=[name for name in candidates if name in pool])
    if plan.warm_start is not None:
        from driftloop.training.warm_start import continue_version

        plan = continue_version(blueprint, plan, pool, train, settings)
    validation = _validation_choice(blueprint, plan, search, len(train) + len(val))
    folds = folds_of(validation, blueprint, train, val, seed=seed)

    use_tracking(settings)
    experiment_id = ensure_experiment(experiment or settings.experiment, settings)
    primary = blueprint.primary_metric
    run_tags = {
        TAG_BLUEPRINT: blueprint.spec.to_text(),
        TAG_SEED: str(seed),
        TAG_VALIDATION: validation.strategy,
        TAG_VALIDATION_REASON: validation.reason,
        TAG_VALIDATION_FOLDS: str(len(folds)),
        **{runtime_tag(pkg): version for pkg, version in runtime_versions().items()},
        **_fingerprint_tags(fingerprints or {}),
        **_search_tags(search),
        **plan.tags,
        **(tags or {}),
    }
    tolerance = tie_tolerance if tie_tolerance is not None else 1 / sum(len(s) for _, s in folds)

    results: list[CandidateResult] = []
    fitted: dict[str, Any] = {}
    searches: list[dict[str, Any]] = []
    clock = TimeBudget(plan.time_budget_s, called)
    started = clock.started
    fit_rows = len(folds[0][0])
    refit_ratio = len(refit_rows(validation, train, val)) / max(fit_rows, 1)
    train_ratio = len(train) / max(fit_rows, 1)
    budget_notes: list[str] = []
    with (
        contextlib.ExitStack() as cleanup,
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name or f"{blueprint.name}-train",
            nested=mlflow.active_run() is not None,
            tags=run_tags,
        ) as parent,
    ):
        prepare = _trial_preparation(cleanup, enabled=len(folds) > 1 or plan.trials > 0)
        # OpenMP/BLAS threads of every fit (estimators without an n_jobs, e.g. scikit-learn's
        # HistGradientBoosting): one on an oversubscribed machine (training.budget)
        cleanup.enter_context(threadpool_limits(limits=fit_threads()))
        log_dataset_inputs(train, val, dataset or blueprint.default_dataset, data_source)
        mlflow.log_params(
            {
                "seed": seed,
                "candidates": ",".join(plan.candidates),
                "hpo_trials": hpo_trials,
                "trials": plan.trials,
                "train_rows": len(train),
                "val_rows": len(val),
                "primary_metric": primary,
            }
        )
        storage, studies = None, []
        if plan.trials > 0:
            storage = storage_url(settings)
            mlflow.set_tag(TAG_OPTUNA_STORAGE, masked_storage_url(storage))
        reserve = _Reserve(blueprint, plan, fitted, refit_ratio, train_ratio, clock)
        reserve.folds = len(folds)

        # phase 1: every candidate's defaults, cheapest tier first, so that a small budget
        # still ranks the cheap candidates and no study starts before all are scored
        runs: dict[str, str] = {}
        costs: dict[str, float] = {}
        # the first candidate scored at its defaults is the incumbent: a challenger replaces
        # it only when it wins by more than the validation noise (training.significance)
        incumbent: tuple[str, dict[str, float], list[Any]] | None = None
        # under a time budget the incumbent's final model (refit on train + validation) is
        # fitted as soon as the incumbent is scored: kept (the usual outcome), it serves
        # refit on every row whatever the search, the selection and the ensembles leave
        secured: Any = None
        searched = [name for name in plan.candidates if name not in plan.continued]
        for name in _cheapest_first(searched, blueprint.candidate_tiers()):
            room = clock.search_left(reserve.seconds(results))
            # a fit cannot be stopped half-way, and an unscored candidate's cost is unknown:
            # guess the slowest so far (a later tier is seldom cheaper than an earlier one)
            guess = max(costs.values(), default=0.0)
            if clock.bounded and results and room < guess:
                note = (
                    f"defaults of {name} not scored: {max(room, 0.0):.1f} s of search time "
                    f"left, the slowest default so far took {guess:.1f} s"
                )
                log.warning("time budget: %s", note)
                budget_notes.append(note)
                continue
            estimator = pool[name]

            def one_trial_fits(cost: float, name: str = name) -> None:
                if clock.spent() and not results:
                    raise ValueError(
                        f"--time-budget: {plan.time_budget_s:g} s is too small for one trial "
                        f"(scoring {name} once took {cost:.1f} s)"
                    )

            result, models, costs[name] = _score_in_child_run(
                blueprint, name, prepare(estimator), loggable_params(estimator),
                folds, experiment_id, check=one_trial_fits,
            )  # fmt: skip
            metrics, seconds = result.metrics, costs[name] / len(folds)
            runs[name] = result.run_id
            log.info(
                "candidate %s: %s %s=%.4f (defaults, %.1f s)",
                name, validation.strategy, primary, metrics[primary], costs[name],
            )  # fmt: skip
            results.append(result)
            if incumbent is None:
                incumbent = (name, dict(metrics), models)
                if (
                    search is not None
                    and clock.bounded
                    and validation.refits_on_all
                    and clock.fits(seconds * refit_ratio)
                ):
                    secured = _refit(blueprint, estimator, {}, refit_rows(validation, train, val))
                    reserve.secured.add(name)
            if not validation.uses_folds:
                fitted[name] = _without_cache(models[0])

        # phase 1b: the warm-start version's model continued on the new rows, scored like
        # the others once they are (never the incumbent: it can only add an option)
        warm = plan.warm_start
        for name in plan.continued:
            room = clock.search_left(reserve.seconds(results))
            guess = max(costs.values(), default=0.0)
            if clock.bounded and results and room < guess:
                note = f"{name} not scored: {max(room, 0.0):.1f} s of search time left"
                log.warning("time budget: %s", note)
                budget_notes.append(note)
                warm = replace(warm, continued={}, not_continued=f"time budget: {note}")
                continue
            try:
                scored = _score_continued(
                    blueprint, name, pool[name], folds, experiment_id, primary
                )
            except Exception as exc:  # a continuation that fails never fails the training
                log.warning("warm start: %s failed: %s: %s", name, type(exc).__name__, exc)
                warm = replace(
                    warm,
                    continued={},
                    not_continued=f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}",
                )
                continue
            result, models, costs[name] = scored
            runs[name] = result.run_id
            results.append(result)
            if not validation.uses_folds:
                fitted[name] = served(models[0])
            warm = replace(
                warm,
                continued={
                    **warm.continued,
                    "fitted": getattr(models[0], "summary_", {}),
                    f"val_{primary}": result.metrics[primary],
                },
            )

        # phase 2: the rest of the budget goes to trials spread over the candidates, the
        # most promising first in every round (and twice as many turns for the top half)
        if plan.trials > 0:
            found = _spread_trials(
                blueprint, pool, results, folds, plan, storage, parent.info.run_id, runs,
                costs, clock=clock, reserve=reserve, seed=seed, experiment_id=experiment_id,
                prepare=prepare, notes=budget_notes,
            )  # fmt: skip
            for result in results:
                search_found = found.get(result.name)
                if search_found is None:
                    continue
                studies.append(search_found.study_name)
                searches.append(search_found.to_dict())
                result.trials = search_found.to_dict()
                if search_found.best_value is not None and blueprint.better(
                    search_found.best_value, result.metrics[primary]
                ):
                    result.metrics = search_found.best_metrics
                    result.tuned_params = search_found.best_params
                    fitted.pop(result.name, None)  # the fitted defaults are not the tuned model
                    _log_to_run(
                        runs[result.name],
                        {f"tuned.{k}": v for k, v in search_found.best_params.items()},
                        _prefixed(search_found.best_metrics, "best_val_"),
                    )
                    log.info(
                        "candidate %s: tuned %s=%.4f %s",
                        result.name, primary, result.metrics[primary], result.tuned_params,
                    )  # fmt: skip
        # declaration order again: near-ties go to the earliest-declared candidate
        order = {name: i for i, name in enumerate(plan.candidates)}
        results.sort(key=lambda r: order.get(r.name, len(order)))
        if studies:
            mlflow.set_tag(TAG_OPTUNA_STUDIES, ",".join(studies))
        if plan.trials > 0 and not any(s["complete"] for s in searches):
            log.warning("no search trial finished: the candidates stand with their defaults")

        log.info("search done at %.1f s", clock.elapsed())
        best = pick_winner(blueprint, results, tolerance)
        verdicts: list[Verdict] = []
        # the configurations scored against the incumbent's defaults: every other
        # candidate's defaults and every finished trial (Bonferroni, training.significance)
        compared = max(1, len(results) - 1 + sum(found["complete"] for found in searches))
        if search is not None and incumbent is not None:
            best = _challenge_incumbent(
                blueprint, pool, results, best, incumbent, folds, fitted, prepare, verdicts,
                seed=seed, max_seconds=_test_seconds(clock), comparisons=compared,
            )  # fmt: skip
        val_metrics, tuned = best.metrics, best.tuned_params
        if secured is not None and best.name == incumbent[0] and not tuned:
            model = secured  # the incumbent kept: its refit on every row is done already
        elif best.name in fitted and not validation.refits_on_all:
            model = fitted[best.name]
        elif best.name in fitted and not clock.fits(reserve.refit([best])):
            # a fit cannot be stopped half-way: the winner as scored (on train) serves
            note = (
                f"refit of {best.name} on train + validation skipped: ~"
                f"{reserve.refit([best]):.1f} s and {max(clock.left(), 0.0):.1f} s of the "
                "budget are left"
            )
            log.warning("time budget: %s", note)
            budget_notes.append(note)
            model = fitted[best.name]
        else:
            model = _refit(blueprint, pool[best.name], tuned, refit_rows(validation, train, val))

        if plan.ensembles:
            # each ensemble that scores better than the winner is tested against it; and one
            # that wins is refit on train + validation like the single winner: served on the
            # training rows alone it would face a winner refit on every row (bench automl,
            # hpc_data: a soft vote whose refit no longer fitted lost to default LightGBM)
            after = ENSEMBLE_TESTS * (_test_seconds(clock) or 0.0)
            if validation.refits_on_all:
                after += reserve.ensemble_refit(results)
            needed = reserve.ensembles(results) + after
            votes = reserve.ensembles(results, stacking=False) + after
            room = clock.left() - logging_seconds() - clock.margin()
            stacking = not clock.bounded or clock.fits(needed)
            if not stacking and not clock.fits(votes):
                note = (
                    f"ensembles skipped: they would take ~{needed:.1f} s (votes alone "
                    f"~{votes:.1f} s) and {max(room, 0.0):.1f} s of the budget are left"
                )
                log.warning("time budget: %s", note)
                budget_notes.append(note)
                mlflow.set_tag(tag_key("ensemble"), "skipped: time budget")
            else:
                if not stacking:
                    note = (
                        f"stacking skipped: it would take ~{needed:.1f} s and "
                        f"{max(room, 0.0):.1f} s of the budget are left; votes only"
                    )
                    log.warning("time budget: %s", note)
                    budget_notes.append(note)
                model, val_metrics, best = ensemble_hook(
                    blueprint, pool, results, model, best, val_metrics, train, val, seed=seed,
                    fitted_on_train=fitted, stacking=stacking,
                    verdicts=verdicts if search is not None else None,
                    test_seconds=_test_seconds(clock), comparisons=compared,
                )  # fmt: skip
                if best not in results:  # an ensemble won: it is listed with the candidates
                    results.append(best)
                    tuned = {}
                    model = _ensemble_on_all_rows(
                        model, blueprint, validation, train, val, clock,
                        reserve.ensemble_refit([r for r in results if r is not best]), budget_notes,
                    )  # fmt: skip
        mlflow.log_param("tie_tolerance", round(tolerance, 6))
        if verdicts:
            _log_verdicts(verdicts)
        log.info("refit and ensembles done at %.1f s", clock.elapsed())

        if hpo_trials > 0 and search is None and blueprint.tuning_space(best.name):
            model, val_metrics, tuned = _tune_winner(
                blueprint, pool, best, model, val_metrics, train, val,
                seed=seed, hpo_trials=hpo_trials, experiment_id=experiment_id,
            )  # fmt: skip

        if warm is not None:
            from driftloop.training.warm_start import TAG_WARM_START

            if warm.continued:
                warm = replace(
                    warm, continued={**warm.continued, "won": best.name in plan.continued}
                )
            mlflow.set_tag(TAG_WARM_START, warm.tag())
        model = served(model)  # a continuation won: its plain continued pipeline is served
        input_example = blueprint.input_example(train)
        mlflow.set_tags({TAG_BEST_CANDIDATE: best.name, TAG_PRIMARY_METRIC: primary})
        mlflow.log_params({f"tuned.{key}": value for key, value in tuned.items()})
        mlflow.log_metrics(_prefixed(val_metrics, "val_"))
        summary = {
            "best_candidate": best.name,
            "tuned_params": {k: _jsonable(v) for k, v in tuned.items()},
            "validation": {"strategy": validation.strategy, "reason": validation.reason},
            "searches": searches,
            "candidates": [_jsonable_dict(asdict(result)) for result in results],
            "time_budget": _budget_summary(clock, budget_notes),
            "selection": [verdict.to_dict() for verdict in verdicts],
        }
        mlflow.log_dict(summary, "training/candidates.json")
        # portable: ships the driftloop code, pins what the pickle imports, and its
        # pyfunc flavour returns label + per-class probabilities (model_logging)
        logging_started = time.perf_counter()
        log_model(model, name=MODEL_ARTIFACT_PATH, input_example=input_example)
        run_id = parent.info.run_id
    record_logging_seconds(time.perf_counter() - logging_started)

    return TrainResult(
        run_id=run_id,
        model_uri=f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}",
        model=model,
        best_candidate=best.name,
        candidates=results,
        val_metrics=val_metrics,
        experiment_id=experiment_id,
        tuned_params=tuned,
        search={
            "settings": json.loads(search.to_json()) if search is not None else {},
            "validation": summary["validation"],
            "trials": plan.trials,
            "studies": studies,
            "searches": searches,
            "storage": masked_storage_url(storage) if storage else None,
            "seconds": round(time.perf_counter() - started, 3),
            "time_budget": _budget_summary(clock, budget_notes),
        },
    )


def _validation_choice(
    blueprint: Blueprint, plan: SearchPlan, search: SearchSettings | None, rows: int
) -> ValidationChoice:
    if search is None:
        return ValidationChoice("holdout", "default: the validation split (no search asked for)")
    preset = search.preset if search.validation is None else None
    return choose_validation(plan.validation, blueprint, rows, folds=plan.folds, preset=preset)


def _search_tags(search: SearchSettings | None) -> dict[str, str]:
    if search is None:
        return {}
    tags = {
        TAG_SEARCH: search.to_json(),
        TAG_SEARCH_SAMPLER: search.sampler,
        TAG_SEARCH_PRUNER: search.pruner,
    }
    if search.preset:
        tags[TAG_SEARCH_PRESET] = search.preset
    return tags


def _trial_preparation(cleanup: contextlib.ExitStack, *, enabled: bool):
    """Each fit's estimator, given a featurisation cache when the same rows are fitted many
    times (folds, trials): the featurisation no trial changes is then fitted once per fold."""
    if not enabled:
        return lambda estimator: estimator
    import tempfile

    from joblib import Memory
    from sklearn.pipeline import Pipeline

    folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="driftloop-search-"))
    memory = Memory(location=folder, verbose=0)

    def prepare(estimator: Any) -> Any:
        if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
            return clone(estimator).set_params(memory=memory)
        return estimator

    return prepare


def _without_cache(model: Any) -> Any:
    """A fitted model fit to log: no reference to the search's (temporary) cache."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        model.set_params(memory=None)
    return model


def _refit(blueprint: Blueprint, template: Any, params: dict[str, Any], rows: pd.DataFrame) -> Any:
    model = clone(template).set_params(**params)
    _fit(model, blueprint, rows)
    return served(model)


def _score_continued(
    blueprint: Blueprint, name: str, estimator: Any, folds: Any, experiment_id: str, primary: str
) -> tuple[CandidateResult, list[Any], float]:
    """The continued candidate fitted on each fold's rows and scored, in its own nested run
    with what it continues as params: (result, fitted models, seconds)."""
    params = {f"continued.{key}": str(value)[:500] for key, value in estimator.record().items()}
    scored = _score_in_child_run(blueprint, name, estimator, params, folds, experiment_id)
    log.info("candidate %s: %s=%.4f (%.1f s)", name, primary, scored[0].metrics[primary], scored[2])
    return scored


def _score_in_child_run(
    blueprint: Blueprint,
    name: str,
    estimator: Any,
    params: dict[str, Any],
    folds: Any,
    experiment_id: str,
    check: Callable[[float], None] | None = None,
) -> tuple[CandidateResult, list[Any], float]:
    """``estimator`` fitted on each fold's rows and scored in its own nested run, its
    ``params`` and validation metrics logged: (result, fitted models, seconds in all).
    ``check(seconds)`` runs inside the run once the cost is known (it may raise)."""
    import mlflow

    with mlflow.start_run(
        experiment_id=experiment_id, run_name=name, nested=True, tags={TAG_CANDIDATE: name}
    ) as child:
        started = time.perf_counter()
        metrics, models = fit_and_score(estimator, blueprint, folds)
        cost = time.perf_counter() - started
        if check is not None:
            check(cost)
        seconds = cost / len(folds)
        mlflow.log_params(params)
        mlflow.log_metrics(_prefixed(metrics, "val_") | {"fit_seconds": seconds})
    result = CandidateResult(name, metrics, params, round(seconds, 4), child.info.run_id)
    return result, models, cost


def _cheapest_first(names: list[str], tiers: dict[str, str]) -> list[str]:
    """``names`` by cost tier (light before boosting), declaration order within a tier."""
    rank = {tier: i for i, tier in enumerate(TIERS)}
    return sorted(names, key=lambda name: rank.get(tiers.get(name, LIGHT), len(rank)))


class _Reserve:
    """What the steps after the search will take, from the fit times measured so far."""

    def __init__(
        self,
        blueprint: Blueprint,
        plan: SearchPlan,
        fitted: dict[str, Any],
        refit_ratio: float,
        train_ratio: float,
        clock: TimeBudget,
    ) -> None:
        self.blueprint, self.plan, self.fitted, self.clock = blueprint, plan, fitted, clock
        self.refit_ratio, self.train_ratio = refit_ratio, train_ratio
        self.trial_seconds: dict[str, float] = {}  # per candidate: its slowest trial, per fold
        # candidates whose defaults are refit on train + validation already (the incumbent)
        self.secured: set[str] = set()
        self.folds = 1

    def _fit_seconds(self, result: CandidateResult) -> float:
        return max(result.fit_seconds, self.trial_seconds.get(result.name, 0.0))

    def _ranked(self, results: list[CandidateResult]) -> list[CandidateResult]:
        primary = self.blueprint.primary_metric
        return sorted(
            results, key=lambda r: r.metrics[primary], reverse=self.blueprint.greater_is_better
        )

    def refit(self, results: list[CandidateResult]) -> float:
        if not results:
            return 0.0
        leader = self._ranked(results)[0]
        if leader.name in self.secured and not self.trial_seconds.get(leader.name):
            return 0.0  # its defaults are the model and refit on every row already
        if (
            leader.name in self.fitted
            and not self.trial_seconds.get(leader.name)
            and self.refit_ratio <= 1
        ):
            return 0.0  # its fitted defaults are the model: nothing to refit
        return self._fit_seconds(leader) * self.refit_ratio

    def ensembles(
        self, results: list[CandidateResult], top: int = 3, *, stacking: bool = True
    ) -> float:
        members = self._ranked(results)[:top]
        if len(members) < 2:
            return 0.0
        refit = any(m.name not in self.fitted for m in members)
        return ensemble_seconds(
            [self._fit_seconds(m) for m in members],
            self.train_ratio,
            refit=refit,
            stacking=stacking,
        )

    def ensemble_refit(self, results: list[CandidateResult], top: int = 3) -> float:
        """A vote's members refitted on train + validation."""
        members = self._ranked(results)[:top]
        return sum(self._fit_seconds(m) for m in members) * self.refit_ratio

    def selection(self, results: list[CandidateResult]) -> float:
        """The search's best against the incumbent (one test, at most ``_test_seconds``;
        the ensembles' tests are the ensemble step's) and the challenger's fits on the
        validation folds it needs (a tuned one, or any under k-fold: the search keeps no
        fitted model per fold)."""
        total = _test_seconds(self.clock) or 0.0
        if results:
            leader = self._ranked(results)[0]
            if self.trial_seconds.get(leader.name) or self.folds > 1:
                total += self._fit_seconds(leader) * self.folds
        return total

    def seconds(self, results: list[CandidateResult]) -> float:
        """Seconds to keep for the selection tests, the refit, the ensembles (when they fit
        the budget at all) and the model logging."""
        total = self.selection(results) + self.refit(results) + logging_seconds()
        if self.plan.ensembles:
            ensembles = self.ensembles(results)
            budget = self.clock.total_s
            if budget is None or ensembles <= ENSEMBLE_RESERVE_SHARE * budget:
                total += ensembles
        return total


def _spread_trials(
    blueprint: Blueprint,
    pool: dict[str, Any],
    results: list[CandidateResult],
    folds: list,
    plan: SearchPlan,
    storage: str | None,
    parent_run_id: str,
    runs: dict[str, str],
    costs: dict[str, float],
    *,
    clock: TimeBudget,
    reserve: _Reserve,
    seed: int,
    experiment_id: str,
    prepare,
    notes: list[str],
) -> dict[str, Any]:
    """Trials round by round over the scored candidates until their trial shares or the
    search's time run out; returns each searched candidate's ``CandidateSearch``.

    Every round visits the candidates best score first and gives the top half two
    trials, the rest one; a candidate whose next trial (its slowest so far, else
    its default's scoring) would not fit the search time left is passed over.
    """
    import mlflow

    from driftloop.training.search import CandidateStudy, StudySettings

    primary = blueprint.primary_metric
    shares = plan.trials_per_candidate()
    by_name = {r.name: r for r in results}
    left = {
        name: shares.get(name, 0)
        for name in by_name
        if shares.get(name, 0) > 0 and blueprint.tuning_space(name)
    }
    studies: dict[str, CandidateStudy] = {}
    step_seconds: dict[str, float] = {}
    finishing = 0.3  # seconds to close one study (its counts written to its candidate's run)
    passed_over: set[str] = set()

    def best_of(name: str) -> float:
        own = by_name[name].metrics[primary]
        study = studies.get(name)
        found = study.best_value if study is not None else None
        if found is not None and blueprint.better(found, own):
            return found
        return own

    # what a trial costs beyond its fits (its MLflow run, the study's storage writes, a
    # study's creation): measured as the search goes, a guess until then
    overhead = [0.3]

    def expected(name: str) -> float:
        if name in step_seconds:
            return step_seconds[name]
        return costs[name] * 1.5 + overhead[0] * (1 if name in studies else 3)

    while True:
        active = [name for name, count in left.items() if count > 0]
        active.sort(key=best_of, reverse=blueprint.greater_is_better)
        progressed = False
        for rank, name in enumerate(active):
            turns = min(2 if rank < (len(active) + 1) // 2 else 1, left[name])
            room = clock.search_left(reserve.seconds(results) + finishing * len(studies))
            if clock.bounded and room < expected(name):
                passed_over.add(name)
                continue
            turn_started = time.perf_counter()
            study = studies.get(name)
            if study is None:
                study = studies[name] = CandidateStudy(
                    blueprint, name, pool[name], folds,
                    StudySettings(
                        storage=storage, study_name=f"{blueprint.name}-{parent_run_id[:12]}-{name}",
                        experiment_id=experiment_id, sampler=plan.sampler, pruner=plan.pruner,
                        n_trials=shares[name], seed=seed, prepare=prepare,
                        first_params=plan.first_params.get(name, {}),
                    ),
                )  # fmt: skip
            # one resume of the candidate's run per turn: its trials nest in it
            with mlflow.start_run(run_id=runs[name], nested=True):
                for _ in range(turns):
                    if study.exhausted:
                        left[name] = 0
                        break
                    room = clock.search_left(reserve.seconds(results) + finishing * len(studies))
                    if clock.bounded and room < expected(name):
                        passed_over.add(name)
                        break
                    step_started = time.perf_counter()
                    fitting = study.result.seconds
                    study.run(1)
                    took = time.perf_counter() - step_started
                    step_seconds[name] = max(step_seconds.get(name, 0.0), took)
                    reserve.trial_seconds[name] = max(
                        reserve.trial_seconds.get(name, 0.0), took / len(folds)
                    )
                    overhead[0] = max(overhead[0], took - (study.result.seconds - fitting))
                    left[name] -= 1
                    progressed = True
            # the turn's own cost (the run's resume, a new study) counts against its trials
            turn = time.perf_counter() - turn_started
            if name in step_seconds:
                step_seconds[name] = max(step_seconds[name], turn / max(turns, 1))
        if not progressed:
            break
    unspent = {name: count for name, count in left.items() if count > 0}
    if unspent:
        note = "search stopped for the time budget with trials unspent: " + ", ".join(
            f"{name} {count}" for name, count in unspent.items()
        )
        log.warning("time budget: %s", note)
        notes.append(note)
    return {name: study.finish(runs[name]) for name, study in studies.items()}


def _log_to_run(run_id: str, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Params and metrics onto a finished run in one write (no resume of the run)."""
    import mlflow
    from mlflow.entities import Metric, Param

    stamp = int(time.time() * 1000)
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)[:500]) for key, value in params.items()],
    )


def _budget_summary(clock: TimeBudget, notes: list[str]) -> dict[str, Any]:
    return {
        "budget_s": clock.total_s,
        "elapsed_s": round(clock.elapsed(), 3),
        "notes": list(notes),
    }


def ensemble_hook(
    blueprint: Blueprint,
    pool: dict[str, Any],
    results: list[CandidateResult],
    model: Any,
    best: CandidateResult,
    val_metrics: dict[str, float],
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    seed: int,
    top: int = 3,
    fitted_on_train: dict[str, Any] | None = None,
    stacking: bool = True,
    verdicts: list[Verdict] | None = None,
    test_seconds: float | None = None,
    comparisons: int = 1,
) -> tuple[Any, dict[str, float], CandidateResult]:
    """Preset ``best``: voting/stacking ensembles over the top candidates, kept only when
    one beats the winner on the validation split (with ``verdicts``, a list the tests'
    outcomes are appended to: only by more than the noise, ``training.significance``;
    ``comparisons``: the configurations the search compared, each ensemble built adds one).

    The ensembles come from ``training.ensembles.ensemble_candidates``; where that
    module is not installed the winner stands as it is.
    """
    import mlflow

    try:
        from driftloop.training.ensembles import ensemble_candidates
    except ImportError:
        log.info("preset best: no ensembles module; the single best candidate stands")
        mlflow.set_tag(tag_key("ensemble"), "unavailable")
        return model, val_metrics, best
    primary = blueprint.primary_metric
    ranked = sorted(
        results,
        key=lambda r: r.metrics[primary],
        reverse=blueprint.greater_is_better,
    )[:top]
    # the members and the winner are all fitted on the training rows and scored on the
    # validation split, so the comparison is like for like whatever the search validated on
    # (``fitted_on_train``: models the search already fitted on exactly those rows)
    ready = fitted_on_train or {}

    def on_train(result: CandidateResult) -> Any:
        if result.name in ready and not result.tuned_params:
            return ready[result.name]
        return _refit(blueprint, pool[result.name], result.tuned_params, train)

    fitted = {r.name: on_train(r) for r in ranked}
    if best.name not in fitted:
        fitted[best.name] = on_train(best)
    single = blueprint.score(fitted[best.name], val)
    kept = (model, val_metrics, best)
    top_score = single[primary]
    built = ensemble_candidates(
        blueprint, fitted, ranked, train, val, top=top, seed=seed, stacking=stacking
    )
    for name, ensemble, metrics in built:
        log.info(
            "ensemble %s: val %s=%.4f (best single %.4f)",
            name,
            primary,
            metrics[primary],
            top_score,
        )
        mlflow.log_metric(f"ensemble_{name}_val_{primary}", metrics[primary])
        if blueprint.better(metrics[primary], top_score) and verdicts is not None:
            verdict = paired_bootstrap(
                blueprint, [fitted[best.name]], [ensemble], [val],
                names=(best.name, name), seed=seed, max_seconds=test_seconds,
                comparisons=comparisons + len(built),
            )  # fmt: skip
            verdicts.append(verdict)
            log.info("selection: %s", verdict.summary())
            if not verdict.challenger_wins:
                continue
        if blueprint.better(metrics[primary], top_score):
            top_score = metrics[primary]
            kept = (ensemble, metrics, CandidateResult(name, metrics, {}, 0.0))
    mlflow.set_tag(tag_key("ensemble"), kept[2].name if kept[2] is not best else "none won")
    return kept


def _challenge_incumbent(
    blueprint: Blueprint,
    pool: dict[str, Any],
    results: list[CandidateResult],
    best: CandidateResult,
    incumbent: tuple[str, dict[str, float], list[Any]],
    folds: Any,
    fitted: dict[str, Any],
    prepare: Any,
    verdicts: list[Verdict],
    *,
    seed: int,
    max_seconds: float | None = None,
    comparisons: int = 1,
) -> CandidateResult:
    """The search's best (``best``) against the incumbent at its defaults, by a paired
    bootstrap over the validation rows of every fold, Bonferroni-corrected for the
    ``comparisons`` it is the best of; the incumbent stays unless the challenger wins by
    more than the noise. Returns the winner's result."""
    name, metrics, models = incumbent
    if best.name == name and not best.tuned_params:
        return best
    if best.name in fitted and not best.tuned_params and len(folds) == 1:
        challengers = [fitted[best.name]]
    else:  # tuned (or validated on folds): fitted again on each fold's rows
        template = clone(pool[best.name]).set_params(**best.tuned_params)
        _, challengers = fit_and_score(prepare(template), blueprint, folds)
    challenger = f"{best.name} (tuned)" if best.tuned_params else best.name
    verdict = paired_bootstrap(
        blueprint, models, challengers, [rows for _, rows in folds],
        names=(f"{name} (defaults)", challenger), seed=seed, max_seconds=max_seconds,
        comparisons=comparisons,
    )  # fmt: skip
    verdicts.append(verdict)
    log.info("selection: %s", verdict.summary())
    if verdict.challenger_wins:
        return best
    kept = next(result for result in results if result.name == name)
    if kept.tuned_params:  # its tuned configuration did not win by enough: back to defaults
        kept.metrics, kept.tuned_params = metrics, {}
    if len(folds) == 1:
        fitted[name] = _without_cache(models[0])
    return kept


TEST_SHARE = 0.03  # of a time budget: what one incumbent-vs-challenger test may resample
ENSEMBLE_TESTS = 2  # tests an ensemble step is expected to run (most build 2 or 3 ensembles)


def _test_seconds(clock: TimeBudget) -> float | None:
    """How long one incumbent-vs-challenger test may resample under a time budget
    (``TEST_SHARE`` of it, at least half a second); a test cut short keeps the incumbent."""
    return max(0.5, TEST_SHARE * clock.total_s) if clock.bounded else None


def _log_verdicts(verdicts: list[Verdict]) -> None:
    """The selection rule and each test's outcome, on the training run (and so on the
    version the registry makes from it)."""
    import mlflow

    mlflow.log_params(
        {
            "selection_rule": (
                "paired bootstrap over validation rows, won at p <= level / comparisons "
                "(Bonferroni over the configurations compared)"
            ),
            "selection_level": round(verdicts[0].level * verdicts[0].comparisons, 6),
            "selection_comparisons": verdicts[0].comparisons,
            "selection_resamples": verdicts[0].resamples,
        }
    )
    mlflow.set_tag(tag_key("selection"), " | ".join(v.summary() for v in verdicts)[:5000])
    mlflow.log_metrics(
        {f"selection_p_value_{i}": verdict.p_value for i, verdict in enumerate(verdicts)}
    )


def _ensemble_on_all_rows(
    ensemble: Any,
    blueprint: Blueprint,
    validation: ValidationChoice,
    train: pd.DataFrame,
    val: pd.DataFrame,
    clock: TimeBudget,
    seconds: float,
    notes: list[str],
) -> Any:
    """A winning ensemble (fitted on the training rows, to be compared with the single
    winner on the validation split) refitted on train + validation where the validation
    strategy refits its winner there and the budget leaves time for it."""
    if not validation.refits_on_all:
        return ensemble
    if not clock.fits(seconds):
        note = (
            f"ensemble refit on train + validation skipped: ~{seconds:.1f} s and "
            f"{max(clock.left(), 0.0):.1f} s of the budget are left"
        )
        log.warning("time budget: %s", note)
        notes.append(note)
        return ensemble
    return _refit(blueprint, ensemble, {}, refit_rows(validation, train, val))


def _tune_winner(
    blueprint: Blueprint,
    pool: dict[str, Any],
    best: CandidateResult,
    model: Any,
    val_metrics: dict[str, float],
    train: pd.DataFrame,
    val: pd.DataFrame,
    *,
    seed: int,
    hpo_trials: int,
    experiment_id: str,
) -> tuple[Any, dict[str, float], dict[str, Any]]:
    """The legacy ``hpo_trials``: a TPE search over the winner's space alone."""
    import mlflow

    primary = blueprint.primary_metric
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"hpo-{best.name}",
        nested=True,
        tags={TAG_CANDIDATE: best.name, TAG_HPO: "optuna"},
    ):
        params, best_value, values = tune(
            blueprint, best.name, pool[best.name], train, val, seed=seed, n_trials=hpo_trials
        )
        for step, value in enumerate(values):
            mlflow.log_metric(f"val_{primary}", value, step=step)
        mlflow.log_params({f"best.{key}": value for key, value in params.items()})
    if best_value is not None and blueprint.better(best_value, val_metrics[primary]):
        model = _refit(blueprint, pool[best.name], params, train)
        return model, blueprint.score(model, val), params
    return model, val_metrics, {}


def log_dataset_inputs(
    train: pd.DataFrame, val: pd.DataFrame, dataset: str, data_source: str = ""
) -> None:
    """The train and validation frames as MLflow dataset inputs (digest, source, schema)."""
    import warnings

    import mlflow
    from mlflow.exceptions import MlflowException

    source = data_source or dataset
    for split, frame, context in (("train", train, "training"), ("val", val, "validation")):
        try:
            with warnings.catch_warnings():
                # a bare name or path "can be interpreted in multiple ways": it is a local one
                warnings.simplefilter("ignore", UserWarning)
                data = mlflow.data.from_pandas(frame, source=source, name=f"{dataset}-{split}")
            mlflow.log_input(data, context=context)
        except MlflowException as exc:
            log.warning("could not log the %s frame as a dataset input: %s", split, exc)


def _fingerprint_tags(fingerprints: dict[str, str]) -> dict[str, str]:
    tags = {}
    for split, value in fingerprints.items():
        if not value:
            continue
        if split == "dataset":
            tags[TAG_DATASET_FINGERPRINT] = str(value)
        elif split == "scheme":
            tags[TAG_SPLIT_SCHEME] = str(value)
        else:
            tags[split_fingerprint_tag(split)] = str(value)
    return tags


def train_from_files(
    blueprint: Blueprint | str,
    train_path: str | Path,
    val_path: str | Path,
    *,
    seed: int = 42,
    experiment: str | None = None,
    fingerprints: dict[str, str] | str | None = None,
    hpo_trials: int = 0,
    settings: Settings | None = None,
    search: str = "",
    dataset: str = "",
    data_source: str = "",
    search_of_champion: str = "",
) -> dict:
    """The KFP step: parquet paths in, JSON-serialisable TrainResult summary out.

    ``search`` is the search settings' JSON (``""``: the blueprint's default). With
    ``search_of_champion`` (a model name) and no ``search``, the search the model's
    champion was trained with is reused (its ``driftloop.search`` tag).
    """
    if isinstance(fingerprints, str):
        fingerprints = json.loads(fingerprints) if fingerprints.strip() else {}
    if not search.strip() and search_of_champion:
        search = champion_search(search_of_champion, settings)
    result = train_candidates(
        blueprint,
        read_frame(train_path),
        read_frame(val_path),
        seed=seed,
        experiment=experiment,
        settings=settings,
        hpo_trials=hpo_trials,
        fingerprints=fingerprints,
        search=search or None,
        dataset=dataset,
        data_source=data_source,
    )
    return result.to_dict()


def champion_search(model_name: str, settings: Settings | None = None) -> str:
    """The search settings (JSON) ``model_name``'s champion was trained with; ``""``: none."""
    from driftloop.registry import CHAMPION, ModelRegistry

    settings = settings or get_settings()
    registry = ModelRegistry(settings.resolved_tracking_uri)
    if not registry.exists(model_name):
        return ""
    champion = registry.version_by_alias(model_name, CHAMPION)
    if champion is None:
        return ""
    found = champion.tags.get(TAG_SEARCH, "")
    if found:
        log.info(
            "reusing the search of %s's champion (version %s): %s",
            model_name,
            champion.version,
            found,
        )
    return found
