"""The Optuna side of a search: storage, samplers, pruners, one study per candidate.

Every candidate gets its own study (its own space, and a pruner that compares
like with like: a forest's trees against a forest's trees), all in one RDB
storage -- SQLite under DRIFTLOOP_HOME by default, any SQLAlchemy URL (e.g.
PostgreSQL) through ``DRIFTLOOP_OPTUNA_STORAGE`` -- so ``optuna-dashboard
<storage>`` shows them. Each trial is a nested MLflow run (under its
candidate's run) with its params, its intermediate scores as a metric history
(``step`` = stage), its final score and its state (complete or pruned).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from driftloop.blueprints.base import Blueprint, ParamChoice, ParamRange
from driftloop.lineage import TAG_CANDIDATE, TAG_TRIAL_NUMBER, TAG_TRIAL_STATE
from driftloop.settings import Settings
from driftloop.training.staged import DEFAULT_STAGES, Folds, evaluate, staging_of

log = logging.getLogger(__name__)

GRID_POINTS = 4  # points a continuous (or wide integer) range is discretised into
PRUNED, COMPLETE, FAILED = "pruned", "complete", "failed"
Space = dict[str, ParamRange | ParamChoice]


# --- storage ---------------------------------------------------------------------
def storage_url(settings: Settings) -> str:
    """Where studies are stored: the configured URL, else SQLite under DRIFTLOOP_HOME."""
    if settings.optuna_storage:
        return settings.optuna_storage
    path = settings.home / "optuna.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def masked_storage_url(url: str) -> str:
    from driftloop.security import mask_secrets

    return mask_secrets(url)


# --- samplers and pruners ----------------------------------------------------------
def grid_of(space: Space) -> dict[str, list[Any]]:
    """A finite grid from a space: choices as they are, ranges discretised.

    Continuous ranges become ``GRID_POINTS`` points, log-spaced on a log range;
    integer ranges are subsampled the same way when wider than that.
    """
    grid: dict[str, list[Any]] = {}
    for key, entry in space.items():
        if isinstance(entry, ParamChoice):
            grid[key] = list(entry.choices)
            continue
        low, high = float(entry.low), float(entry.high)
        spaced = (
            np.geomspace(low, high, GRID_POINTS)
            if entry.log
            else np.linspace(low, high, GRID_POINTS)
        )
        if entry.integer:
            values = sorted({int(round(v)) for v in spaced} | {int(low), int(high)})
            grid[key] = [min(max(v, int(low)), int(high)) for v in values]
        else:
            grid[key] = [float(min(max(v, low), high)) for v in spaced]
    return grid


def grid_size(space: Space) -> int:
    return math.prod(len(values) for values in grid_of(space).values()) if space else 0


def make_sampler(kind: str, space: Space, seed: int, n_trials: int) -> Any:
    import optuna

    if kind == "grid":
        return optuna.samplers.GridSampler(grid_of(space), seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # a third of a small budget explores at random before TPE models the good region
    startup = min(10, max(2, n_trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(kind: str, steps: int) -> Any:
    import optuna

    if kind == "none" or steps < 2:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=steps, reduction_factor=3)


def suggest(trial: Any, key: str, entry: ParamRange | ParamChoice) -> Any:
    """One Optuna suggestion for a tuning-space entry."""
    if isinstance(entry, ParamChoice):
        return trial.suggest_categorical(key, list(entry.choices))
    if entry.integer:
        return trial.suggest_int(key, int(entry.low), int(entry.high), log=entry.log)
    return trial.suggest_float(key, float(entry.low), float(entry.high), log=entry.log)


def warm_params(space: Space, params: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` a trial of ``space`` can take: keys of the space, choices
    among its choices, numbers clipped into their range (a champion's params may come
    from an older, wider space)."""
    kept: dict[str, Any] = {}
    for key, value in params.items():
        entry = space.get(key)
        if entry is None:
            continue
        if isinstance(entry, ParamChoice):
            matches = [c for c in entry.choices if c == value or str(c) == str(value)]
            if matches:
                kept[key] = matches[0]
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        number = min(max(number, float(entry.low)), float(entry.high))
        kept[key] = int(round(number)) if entry.integer else number
    return kept


# --- one candidate's study -----------------------------------------------------------
@dataclass
class CandidateSearch:
    """What one candidate's study found."""

    candidate: str
    study_name: str
    sampler: str
    best_params: dict[str, Any] = field(default_factory=dict)
    best_value: float | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "study": self.study_name,
            "sampler": self.sampler,
            "best_params": {k: _jsonable(v) for k, v in self.best_params.items()},
            "best_value": self.best_value,
            "complete": self.complete,
            "pruned": self.pruned,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _as_is(estimator: Any) -> Any:
    return estimator


@dataclass(frozen=True)
class StudySettings:
    """How one candidate's study runs: where it is stored, what samples and prunes it, how
    many trials, under which MLflow experiment.

    ``prepare`` adjusts each trial's estimator before fitting (e.g. a cache for the
    featurisation that no trial changes). ``first_params`` (a warm start: e.g. the
    registered champion's tuned hyperparameters) is enqueued as the study's first trial;
    keys outside the candidate's space are dropped.
    """

    storage: str
    study_name: str
    experiment_id: str
    sampler: str = "tpe"
    pruner: str = "hyperband"
    n_trials: int = 0
    seed: int = 0
    prepare: Callable[[Any], Any] = _as_is
    first_params: dict[str, Any] = field(default_factory=dict)


def search_candidate(
    blueprint: Blueprint,
    name: str,
    template: Any,
    folds: Folds,
    settings: StudySettings,
    *,
    timeout_s: float | None = None,
) -> CandidateSearch:
    """Run ``settings.n_trials`` trials of ``name``'s tuning space in one go (fewer if
    ``timeout_s`` runs out first).

    Call inside the candidate's MLflow run: each trial is a run nested in it.
    """
    study = CandidateStudy(blueprint, name, template, folds, settings)
    study.run(settings.n_trials, timeout_s)
    return study.finish()


class CandidateStudy:
    """One candidate's stored study, run a few trials at a time.

    A time-budgeted search spreads its trials over the candidates round by
    round (``run`` with one trial per call) instead of letting the first
    candidate's study use the whole budget. Each ``run`` must be called inside
    the candidate's MLflow run (its trials nest in it); ``finish`` logs the
    trial counts there and returns what the study found.
    """

    def __init__(
        self, blueprint: Blueprint, name: str, template: Any, folds: Folds, settings: StudySettings
    ) -> None:
        self.blueprint, self.name, self.template, self.folds = blueprint, name, template, folds
        self.settings = settings
        self.experiment_id, self.prepare = settings.experiment_id, settings.prepare
        self.space = blueprint.tuning_space(name)
        self.result = CandidateSearch(name, settings.study_name, settings.sampler)
        self.trial_seconds: list[float] = []
        self.metrics_of: dict[int, dict[str, float]] = {}
        self.searchable = bool(self.space) and settings.n_trials > 0
        self.study = None
        if not self.searchable:
            return
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        steps = staging_of(template, folds=len(folds), stages=DEFAULT_STAGES).steps(len(folds))
        chosen_sampler = make_sampler(
            settings.sampler, self.space, settings.seed, settings.n_trials
        )
        chosen_pruner = make_pruner(settings.pruner, steps)
        self.study = optuna.create_study(
            study_name=settings.study_name,
            storage=settings.storage,
            direction=blueprint.metric.direction,
            sampler=chosen_sampler,
            pruner=chosen_pruner,
            load_if_exists=False,
        )
        # a stored study does not keep its sampler or pruner: record what ran (and its stages)
        self.study.set_user_attr("candidate", name)
        self.study.set_user_attr("primary_metric", blueprint.primary_metric)
        self.study.set_user_attr("sampler", type(chosen_sampler).__name__)
        self.study.set_user_attr("pruner", type(chosen_pruner).__name__)
        self.study.set_user_attr("stages", steps)
        # a grid is the search's whole definition: a warm start's point is not added to it
        first = warm_params(self.space, settings.first_params) if settings.sampler != "grid" else {}
        if first:
            self.study.enqueue_trial(first, skip_if_exists=True)
            self.study.set_user_attr(
                "warm_start_params", {k: _jsonable(v) for k, v in first.items()}
            )

    @property
    def exhausted(self) -> bool:
        """A grid sampler with every point tried has nothing left to run."""
        import optuna

        sampler = self.study.sampler if self.study is not None else None
        if isinstance(sampler, optuna.samplers.GridSampler):
            return len(self.study.trials) >= grid_size(self.space)
        return False

    @property
    def best_value(self) -> float | None:
        import optuna

        if self.study is None:
            return None
        done = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return float(self.study.best_value) if done else None

    def run(self, n_trials: int, timeout_s: float | None = None) -> None:
        """``n_trials`` more trials (fewer if ``timeout_s`` runs out first)."""
        if self.study is None or n_trials <= 0 or (timeout_s is not None and timeout_s <= 0):
            return
        started = time.perf_counter()
        before = len(self.study.trials)
        self.study.optimize(
            self._objective,
            n_trials=n_trials,
            timeout=timeout_s,
            # a bad corner of the space fails one trial, not the run
            catch=(ValueError, ArithmeticError),
            gc_after_trial=False,
        )
        seconds = time.perf_counter() - started
        self.result.seconds += seconds
        ran = len(self.study.trials) - before
        if ran:
            self.trial_seconds.append(seconds / ran)

    def _objective(self, trial: Any) -> float:
        import mlflow
        import optuna

        blueprint, name = self.blueprint, self.name
        params = {key: suggest(trial, key, entry) for key, entry in self.space.items()}
        estimator = self.prepare(clone(self.template).set_params(**params))
        history: list[tuple[int, float]] = []

        def report(value: float, step: int) -> None:
            history.append((step, value))
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at stage {step} ({value:.4f})")

        # started and ended by hand: a pruned trial ends KILLED, not FAILED as a
        # ``with`` block would leave a run left by an exception
        mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=f"{name}-trial-{trial.number}",
            nested=True,
            tags={TAG_CANDIDATE: name, TAG_TRIAL_NUMBER: str(trial.number)},
        )
        state, status, stopped = FAILED, "FAILED", None
        try:
            mlflow.log_params({key: str(value)[:500] for key, value in params.items()})
            metrics = evaluate(estimator, blueprint, self.folds, report=report)
            mlflow.log_metrics({f"val_{key}": value for key, value in metrics.items()})
            state, status = COMPLETE, "FINISHED"
        except optuna.TrialPruned as exc:
            state, status, stopped = PRUNED, "KILLED", exc
        finally:
            for step, value in history:
                mlflow.log_metric(f"intermediate_{blueprint.primary_metric}", value, step=step)
            mlflow.set_tag(TAG_TRIAL_STATE, state)
            mlflow.end_run(status=status)
        if stopped is not None:
            raise stopped
        log.debug("trial %s of %s: %s", trial.number, name, metrics)
        self.metrics_of[trial.number] = metrics
        return metrics[blueprint.primary_metric]

    def finish(self, run_id: str | None = None) -> CandidateSearch:
        """Count the trials, log the counts on the candidate's run (``run_id``, else the
        active run), return the result."""
        import mlflow
        import optuna

        result = self.result
        if self.study is None:
            return result
        states = [trial.state for trial in self.study.trials]
        result.complete = states.count(optuna.trial.TrialState.COMPLETE)
        result.pruned = states.count(optuna.trial.TrialState.PRUNED)
        result.failed = states.count(optuna.trial.TrialState.FAIL)
        counts = {
            "trials_complete": result.complete,
            "trials_pruned": result.pruned,
            "trials_failed": result.failed,
        }
        if result.complete:
            best = self.study.best_trial
            result.best_params = dict(best.params)
            result.best_value = float(best.value)
            result.best_metrics = self.metrics_of.get(best.number, {})
            counts[f"best_val_{self.blueprint.primary_metric}"] = result.best_value
        if run_id is None:
            mlflow.log_metrics(counts)
        else:  # one write to a finished run, no resume
            from mlflow.entities import Metric

            stamp = int(time.time() * 1000)
            metrics = [Metric(key, float(value), stamp, 0) for key, value in counts.items()]
            mlflow.MlflowClient().log_batch(run_id, metrics=metrics)
        return result


# --- the dashboard ------------------------------------------------------------------
def dashboard_command(storage: str, port: int = 8080) -> list[str]:
    """How to open the studies: ``optuna-dashboard <storage>`` (bound to loopback)."""
    return ["optuna-dashboard", storage, "--host", "127.0.0.1", "--port", str(port)]


def sqlite_path(storage: str) -> Path | None:
    return Path(storage[len("sqlite:///") :]) if storage.startswith("sqlite:///") else None
