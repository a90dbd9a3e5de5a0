"""Candidate search: fit every candidate of a blueprint, keep the best, log it all.

MLflow layout of one training: a parent run (the winner's model under
artifact path ``model``, its validation metrics, split fingerprints as tags)
with one nested child run per candidate (params, validation metrics, fit
seconds), plus an ``hpo`` child run when an Optuna search ran.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.base import clone

from driftloop.blueprints import Blueprint, ParamChoice, ParamRange, get_blueprint
from driftloop.datasets.files import read_frame
from driftloop.lineage import (
    TAG_BEST_CANDIDATE,
    TAG_BLUEPRINT,
    TAG_CANDIDATE,
    TAG_DATASET_FINGERPRINT,
    TAG_HPO,
    TAG_PRIMARY_METRIC,
    TAG_SEED,
    TAG_SPLIT_SCHEME,
    runtime_tag,
    runtime_versions,
    split_fingerprint_tag,
)
from driftloop.settings import Settings, get_settings

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

    def to_dict(self) -> dict:
        """JSON-serialisable summary (everything but the model object)."""
        return {
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "best_candidate": self.best_candidate,
            "val_metrics": self.val_metrics,
            "experiment_id": self.experiment_id,
            "tuned_params": self.tuned_params,
            "candidates": [asdict(candidate) for candidate in self.candidates],
        }


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
        if target not in frame.columns:
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
) -> TrainResult:
    """Fit the blueprint's candidates on ``train``, rank them on ``val``, log to MLflow.

    ``fingerprints`` ({"dataset", "train", "val", "test", "scheme"}) become run tags;
    ``candidates`` restricts the search to those names; ``hpo_trials`` > 0 runs
    an Optuna search over the winner's tuning space. Candidates whose
    validation score is within ``tie_tolerance`` of the best (default: one
    validation row's worth, 1/len(val)) count as tied, and the tie goes to the
    one the blueprint declares first (its simpler, cheaper-to-serve choice).
    """
    import mlflow

    from driftloop.training.model_logging import log_model

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
        pool = {name: pool[name] for name in candidates}

    use_tracking(settings)
    experiment_id = ensure_experiment(experiment or settings.experiment, settings)
    primary = blueprint.primary_metric
    run_tags = {
        TAG_BLUEPRINT: blueprint.spec.to_text(),
        TAG_SEED: str(seed),
        **{runtime_tag(pkg): version for pkg, version in runtime_versions().items()},
        **_fingerprint_tags(fingerprints or {}),
        **(tags or {}),
    }

    results: list[CandidateResult] = []
    fitted: dict[str, Any] = {}
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name or f"{blueprint.name}-train",
        nested=mlflow.active_run() is not None,
        tags=run_tags,
    ) as parent:
        mlflow.log_params(
            {
                "seed": seed,
                "candidates": ",".join(pool),
                "hpo_trials": hpo_trials,
                "train_rows": len(train),
                "val_rows": len(val),
                "primary_metric": primary,
            }
        )
        for name, estimator in pool.items():
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=name,
                nested=True,
                tags={TAG_CANDIDATE: name},
            ) as child:
                seconds = _fit(estimator, blueprint, train)
                metrics = blueprint.score(estimator, val)
                params = loggable_params(estimator)
                mlflow.log_params(params)
                mlflow.log_metrics(_prefixed(metrics, "val_") | {"fit_seconds": seconds})
            log.info("candidate %s: val %s=%.4f in %.1fs", name, primary, metrics[primary], seconds)
            results.append(
                CandidateResult(name, metrics, params, round(seconds, 4), child.info.run_id)
            )
            fitted[name] = estimator

        best = pick_winner(
            blueprint, results, tie_tolerance if tie_tolerance is not None else 1 / len(val)
        )
        model, val_metrics = fitted[best.name], best.metrics
        mlflow.log_param(
            "tie_tolerance", tie_tolerance if tie_tolerance is not None else round(1 / len(val), 6)
        )

        tuned: dict[str, Any] = {}
        if hpo_trials > 0 and blueprint.tuning_space(best.name):
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=f"hpo-{best.name}",
                nested=True,
                tags={TAG_CANDIDATE: best.name, TAG_HPO: "optuna"},
            ):
                params, best_value, values = tune(
                    blueprint,
                    best.name,
                    pool[best.name],
                    train,
                    val,
                    seed=seed,
                    n_trials=hpo_trials,
                )
                for step, value in enumerate(values):
                    mlflow.log_metric(f"val_{primary}", value, step=step)
                mlflow.log_params({f"best.{key}": value for key, value in params.items()})
            if best_value is not None and blueprint.better(best_value, val_metrics[primary]):
                model = clone(pool[best.name]).set_params(**params)
                _fit(model, blueprint, train)
                val_metrics = blueprint.score(model, val)
                tuned = params

        input_example = blueprint.input_example(train)
        mlflow.set_tags({TAG_BEST_CANDIDATE: best.name, TAG_PRIMARY_METRIC: primary})
        mlflow.log_params({f"tuned.{key}": value for key, value in tuned.items()})
        mlflow.log_metrics(_prefixed(val_metrics, "val_"))
        mlflow.log_dict(
            {
                "best_candidate": best.name,
                "tuned_params": tuned,
                "candidates": [asdict(result) for result in results],
            },
            "training/candidates.json",
        )
        # portable: ships the driftloop code, pins what the pickle imports, and its
        # pyfunc flavour returns label + per-class probabilities (model_logging)
        log_model(model, name=MODEL_ARTIFACT_PATH, input_example=input_example)
        run_id = parent.info.run_id

    return TrainResult(
        run_id=run_id,
        model_uri=f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}",
        model=model,
        best_candidate=best.name,
        candidates=results,
        val_metrics=val_metrics,
        experiment_id=experiment_id,
        tuned_params=tuned,
    )


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
) -> dict:
    """The KFP step: parquet paths in, JSON-serialisable TrainResult summary out."""
    if isinstance(fingerprints, str):
        fingerprints = json.loads(fingerprints) if fingerprints.strip() else {}
    result = train_candidates(
        blueprint,
        read_frame(train_path),
        read_frame(val_path),
        seed=seed,
        experiment=experiment,
        settings=settings,
        hpo_trials=hpo_trials,
        fingerprints=fingerprints,
    )
    return result.to_dict()
