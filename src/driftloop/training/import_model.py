"""Bring your own model: evaluate, register, smoke-serve, gate and promote a model fitted elsewhere.

``import_model`` takes a pickled/joblib scikit-learn-compatible estimator (a
whole pipeline over the raw table columns) or an MLflow model directory with
the ``sklearn`` flavour, and puts it through the second half of the training
pipeline with the very functions its components call:

    read the data → split (``data_steps``: the split a trained challenger is scored on)
    → check the model against the rows → log it (``model_logging.log_model``: portable,
    served like any driftloop model) → evaluate (``evaluate_run``) → register with
    lineage → smoke-serve → gate vs champion → fit the drift reference → promote

Loading a pickle runs code from the file: import only files you trust (the
same holds for any MLflow model).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.blueprints import Blueprint, BlueprintSpec, get_blueprint
from driftloop.datasets.files import read_frame
from driftloop.settings import Settings, get_settings
from driftloop.training.splits import SPLIT_NAMES

MODEL_ARTIFACT_PATH = "model"
IMPORTED_ARTIFACT_PATH = "imported"
MLMODEL_FILE = "MLmodel"
# what each split is to MLflow's dataset tracking (``mlflow.data.context``)
INPUT_CONTEXTS = {"train": "training", "val": "validation", "test": "evaluation"}
# the step names progress events carry, in the order they run
STEPS = (
    "read model",
    "read data",
    "check model",
    "log model",
    "evaluate",
    "register",
    "smoke-serve",
    "gate",
    "fit drift reference",
    "promote",
)


class ModelImportError(ValueError):
    """Bad input to an import; the message starts with the option to fix (``--model: ...``)."""


class ImportStepFailed(RuntimeError):
    """A step after the checks failed (the model would not serve, the gate could not decide)."""

    def __init__(self, step: str, cause: BaseException):
        self.step = step
        self.cause = cause
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        super().__init__(f"step {step!r} failed: {type(cause).__name__}: {detail}")


@dataclass(frozen=True)
class StepEvent:
    step: str
    kind: str  # "started" | "done" | "failed"
    seconds: float | None = None
    detail: str = ""  # what the step found out (the data's task and rows), for the user


@dataclass(frozen=True)
class ModelFile:
    """A model read from disk and what identifies the bytes it came from."""

    model: Any
    path: Path
    kind: str  # "pickle" | "mlflow"
    sha256: str

    @property
    def imported_from(self) -> str:
        """The ``driftloop.imported_from`` tag: file (or directory) name and content hash."""
        return f"{self.path.name} sha256:{self.sha256}"


@dataclass
class ImportResult:
    model_name: str
    version: str
    run_id: str
    imported_from: str
    model_class: str
    blueprint: str
    primary_metric: str
    greater_is_better: bool
    test_metrics: dict[str, float]
    split_rows: dict[str, int]
    decision: str
    reason: str
    champion_score: float | None
    challenger_score: float | None
    smoke: dict
    drift_reference: str
    aliases: list[str] = field(default_factory=list)
    rollout: dict | None = None
    note: str = ""
    unused_columns: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


# --- reading the model -------------------------------------------------------------
def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for item in files:
        if path.is_dir():
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        with item.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_model(path: str | Path) -> ModelFile:
    """Unpickle a model file or load an MLflow model directory (``sklearn`` flavour).

    Unpickling executes code the file names: only for files you trust.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelImportError(f"--model: no such file or directory: {path}")
    if path.is_dir():
        model = _read_mlflow_dir(path)
        kind = "mlflow"
    else:
        model = _unpickle(path)
        kind = "pickle"
    return ModelFile(model=model, path=path, kind=kind, sha256=file_sha256(path))


def _unpickle(path: Path) -> Any:
    import joblib  # reads plain pickles too

    try:
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        raise ModelImportError(
            f"--model: {path.name} needs the module {exc.name!r}, which is not installed here"
        ) from None
    except MemoryError:
        raise ModelImportError(f"--model: {path.name} is too large to load") from None
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, ... any of them
        raise ModelImportError(
            f"--model: cannot read {path.name} as a pickle or joblib file "
            f"({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def _read_mlflow_dir(path: Path) -> Any:
    if not (path / MLMODEL_FILE).is_file():
        raise ModelImportError(
            f"--model: {path} is a directory without an {MLMODEL_FILE} file "
            "(give a pickle/joblib file or an MLflow model directory)"
        )
    from mlflow.models import Model

    from driftloop.training.model_logging import load_native

    try:
        flavours = sorted(Model.load(str(path / MLMODEL_FILE)).flavors)
    except Exception as exc:  # a YAML or schema error in MLmodel
        raise ModelImportError(
            f"--model: {path / MLMODEL_FILE} is not a readable MLmodel file: {_first_line(exc)}"
        ) from None
    if "sklearn" not in flavours:
        raise ModelImportError(
            f"--model: the MLflow model at {path} has no sklearn flavour (it has "
            f"{', '.join(flavours) or 'none'}); import takes a scikit-learn-compatible model"
        )
    try:
        return load_native(str(path))
    except ModuleNotFoundError as exc:
        raise ModelImportError(
            f"--model: the MLflow model at {path} needs the module {exc.name!r}, "
            "which is not installed here"
        ) from None
    except Exception as exc:
        raise ModelImportError(
            f"--model: cannot load the MLflow model at {path}: {_first_line(exc)}"
        ) from None


def check_fitted_estimator(model: Any, what: str) -> None:
    """A fitted estimator with ``predict``; else ``ModelImportError`` naming ``--model``."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    kind = type(model).__name__
    if not (callable(getattr(model, "predict", None)) and callable(getattr(model, "fit", None))):
        raise ModelImportError(
            f"--model: {what} holds a {kind}, not an estimator (an object with fit and "
            "predict, such as a fitted scikit-learn Pipeline)"
        )
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise ModelImportError(
            f"--model: {what} holds an unfitted {kind}: fit it on the table before importing"
        ) from None
    except TypeError as exc:
        raise ModelImportError(
            f"--model: {what} holds a {kind}, not a fitted estimator ({_first_line(exc)})"
        ) from None


# --- checking the model against the rows -----------------------------------------------
def _class_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_task(blueprint: Blueprint, model: Any, note: str) -> None:
    """The model answers what the blueprint scores: class probabilities or numbers."""
    wants_classes = blueprint.class_column is not None
    has_proba = callable(getattr(model, "predict_proba", None)) and hasattr(model, "classes_")
    why = f" ({note})" if note else ""
    if wants_classes and not has_proba:
        raise ModelImportError(
            f"--task: the target {blueprint.target_column!r} is scored as classes{why}, but "
            f"the model has no predict_proba/classes_; a regressor needs --task regression"
        )
    if not wants_classes and has_proba:
        raise ModelImportError(
            f"--task: the model is a classifier (classes "
            f"{', '.join(map(_class_text, list(model.classes_)[:5]))}), but the target "
            f"{blueprint.target_column!r} is scored as numbers{why}; use --task classification"
        )


def check_classes(blueprint: Blueprint, model: Any, frame: pd.DataFrame) -> None:
    """A classifier predicts at least one of the target's classes, else the target is wrong."""
    if blueprint.class_column is None:
        return
    predicted = [_class_text(c) for c in list(model.classes_)]
    present = sorted({_class_text(v) for v in blueprint.targets(frame)})
    if not set(predicted) & set(present):
        raise ModelImportError(
            f"--target: the model predicts {', '.join(predicted[:8])} but column "
            f"{blueprint.target_column!r} holds {', '.join(present[:8])}: is it the column "
            "the model was trained to predict?"
        )


def adopt(blueprint: Blueprint, model: Any, train: pd.DataFrame) -> Any:
    """The model as the blueprint serves it (a blueprint without the hook serves it as is)."""
    hook = getattr(blueprint, "adopt_model", None)
    if hook is None:
        return model
    try:
        return hook(model, train)
    except ModelImportError:
        raise
    except ValueError as exc:
        raise ModelImportError(str(exc)) from None


def score_on(blueprint: Blueprint, model: Any, frame: pd.DataFrame) -> dict[str, float]:
    """The blueprint's metrics on ``frame``; a model that fails on the rows names ``--model``."""
    from driftloop.training.evaluate import evaluate

    try:
        with warnings.catch_warnings():
            # a foreign model's own warnings (feature names, versions) would break the one
            # line a failure ends in; what matters here is whether it answers
            warnings.simplefilter("ignore")
            return evaluate(blueprint, model, frame)
    except Exception as exc:  # anything the foreign model raises on these rows
        raise ModelImportError(
            f"--model: the model failed on the --data rows ({type(exc).__name__}: "
            f"{_first_line(exc)})"
        ) from None


def unused_columns(model: Any, features: pd.DataFrame) -> list[str]:
    """Feature columns of the table the model was not fitted on (when it recorded its columns)."""
    taken = getattr(model, "feature_names_in_", None)
    if taken is None:
        return []
    names = {str(c) for c in taken}
    return [str(c) for c in features.columns if str(c) not in names]


# --- the import --------------------------------------------------------------------
def import_model(
    name: str,
    model_path: str | Path,
    data: str,
    blueprint: BlueprintSpec | str = "tabular",
    *,
    seed: int | None = None,
    experiment: str | None = None,
    min_improvement: float | None = None,
    smoke_timeout_s: float = 120.0,
    settings: Settings | None = None,
    progress: Callable[[StepEvent], None] | None = None,
) -> ImportResult:
    """Evaluate, register, smoke-serve, gate and (if it wins) promote the model at ``model_path``.

    ``data`` is a CSV/Parquet path or URL with the target column; ``blueprint``
    its instance (``BlueprintSpec``: name and options such as ``target``).
    Bad input raises ``ModelImportError`` (one line, naming the option) before
    anything is written to MLflow; a later step raises ``ImportStepFailed``.
    """
    settings = settings or get_settings()
    seed = settings.seed if seed is None else seed
    min_improvement = settings.min_improvement if min_improvement is None else min_improvement
    timings: dict[str, float] = {}
    step = _stepper(progress, timings)

    with step("read model"):
        model_file = read_model(model_path)
        check_fitted_estimator(model_file.model, model_file.path.name)

    with tempfile.TemporaryDirectory(prefix="driftloop-import-") as scratch:
        paths = {split: Path(scratch) / f"{split}.parquet" for split in SPLIT_NAMES}
        with step("read data") as found:
            instance, dataset, note, fingerprints = _read_and_split(
                blueprint, data, Path(scratch) / "data.parquet", paths, seed
            )
            frames = {split: read_frame(paths[split]) for split in SPLIT_NAMES}
            found["detail"] = note
        with step("check model"):
            check_task(instance, model_file.model, note)
            check_classes(instance, model_file.model, frames["test"])
            adopted = adopt(instance, model_file.model, frames["train"])
            score_on(instance, adopted, frames["test"])
            unused = unused_columns(model_file.model, instance.features(frames["train"]))
            # what the served model takes: input examples (signature, smoke samples) hold only that
            served = {split: frame.drop(columns=unused) for split, frame in frames.items()}

        # From here on the model is known to answer on these rows: MLflow gets written.
        with step("log model"):
            run_id = _log_run(
                name, model_file, adopted, instance, frames, data, dataset, fingerprints,
                input_example=instance.input_example(served["train"]),
                seed=seed, experiment=experiment, settings=settings,
            )  # fmt: skip
        with step("evaluate"):
            test_metrics = _failing_as(
                "evaluate", _evaluate, run_id, paths["test"], instance, settings
            )
        with step("register"):
            version = _failing_as(
                "register", _register, name, run_id, instance, fingerprints, test_metrics,
                dataset, data, model_file.imported_from, settings,
            )  # fmt: skip
        with step("smoke-serve"):
            smoke = _failing_as(
                "smoke-serve", _smoke, name, version, instance, served["test"], smoke_timeout_s
            )
        with step("gate"):
            decision = _failing_as(
                "gate", _gate, name, version, instance, paths["test"], fingerprints["test"],
                settings.model_copy(update={"min_improvement": min_improvement}),
            )  # fmt: skip
        # fitted whatever the gate said, before any promotion (as the training pipeline does):
        # a kept challenger promoted later already has its reference
        with step("fit drift reference"):
            reference = _failing_as(
                "fit drift reference", _fit_reference, name, version, paths, settings
            )
    rollout = None
    if decision.promote:
        with step("promote"):
            rollout = _failing_as("promote", _promote, name, version, settings)

    from driftloop.registry import ModelRegistry

    current = ModelRegistry(settings.resolved_tracking_uri).aliases(name)
    return ImportResult(
        model_name=name,
        version=version,
        run_id=run_id,
        imported_from=model_file.imported_from,
        model_class=_class_name(model_file.model),
        blueprint=instance.spec.to_text(),
        primary_metric=instance.primary_metric,
        greater_is_better=instance.greater_is_better,
        test_metrics=test_metrics,
        split_rows={split: len(frame) for split, frame in frames.items()},
        decision=decision.outcome,
        reason=decision.reason,
        champion_score=decision.champion_score,
        challenger_score=decision.challenger_score,
        smoke=smoke,
        drift_reference=reference,
        aliases=sorted(alias for alias, v in current.items() if str(v) == str(version)),
        rollout=rollout,
        note=note,
        unused_columns=unused,
        timings=timings,
    )


def _read_and_split(
    spec: BlueprintSpec | str, data: str, ingested: Path, paths: dict[str, Path], seed: int
) -> tuple[Blueprint, str, str, dict]:
    """The blueprint instance resolved on the table, then ingest, validate and split it
    exactly as the training pipeline's first steps do."""
    from driftloop.training import data_steps

    try:
        base = get_blueprint(spec)
    except ValueError as exc:  # an unknown blueprint, an option it does not take or allow
        message = _first_line(exc)
        raise ModelImportError(
            message if message.startswith("--") else f"--blueprint: {message}"
        ) from None
    try:
        instance, dataset, note = base.prepare(None, data)
        instance.metric  # noqa: B018 - an unknown --metric fails here
        data_steps.ingest(ingested, instance, dataset, data)
        data_steps.validate(ingested, instance)
        fingerprints = data_steps.split(ingested, paths, instance, seed=seed)
    except ModelImportError:
        raise
    except (ValueError, FileNotFoundError, OSError) as exc:
        # dataset and blueprint errors are ValueErrors whose message names the option or column
        message = _first_line(exc)
        raise ModelImportError(
            message if message.startswith("--") else f"--data: {message}"
        ) from None
    return instance, dataset, note, fingerprints


def _log_run(
    name: str,
    model_file: ModelFile,
    adopted: Any,
    blueprint: Blueprint,
    frames: dict[str, pd.DataFrame],
    data: str,
    dataset: str,
    fingerprints: dict,
    *,
    input_example: pd.DataFrame,
    seed: int,
    experiment: str | None,
    settings: Settings,
) -> str:
    """One MLflow run holding the served model, its inputs and where it came from."""
    import mlflow

    from driftloop.lineage import (
        TAG_BLUEPRINT,
        TAG_DATASET_FINGERPRINT,
        TAG_IMPORTED_FROM,
        TAG_SEED,
        TAG_SPLIT_SCHEME,
        runtime_tag,
        runtime_versions,
        split_fingerprint_tag,
    )
    from driftloop.training.candidates import ensure_experiment, use_tracking
    from driftloop.training.model_logging import log_model

    use_tracking(settings)
    experiment_id = ensure_experiment(experiment or settings.experiment, settings)
    tags = {
        TAG_BLUEPRINT: blueprint.spec.to_text(),
        TAG_SEED: str(seed),
        TAG_IMPORTED_FROM: model_file.imported_from,
        TAG_DATASET_FINGERPRINT: fingerprints["dataset"],
        TAG_SPLIT_SCHEME: fingerprints["scheme"],
        **{split_fingerprint_tag(split): fingerprints[split] for split in SPLIT_NAMES},
        **{runtime_tag(pkg): version for pkg, version in runtime_versions().items()},
    }
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"{name}-import",
        tags=tags,
        nested=mlflow.active_run() is not None,
    ) as run:
        mlflow.log_params(
            {
                "model_file": model_file.path.name,
                "model_kind": model_file.kind,
                "model_class": _class_name(model_file.model),
                "seed": seed,
                "primary_metric": blueprint.primary_metric,
                **{f"{split}_rows": len(frame) for split, frame in frames.items()},
            }
        )
        log_split_inputs(frames, source=data, dataset=dataset, blueprint=blueprint)
        if model_file.path.is_dir():
            mlflow.log_artifacts(
                str(model_file.path), f"{IMPORTED_ARTIFACT_PATH}/{model_file.path.name}"
            )
        else:
            mlflow.log_artifact(str(model_file.path), IMPORTED_ARTIFACT_PATH)
        try:
            log_model(
                adopted,
                name=MODEL_ARTIFACT_PATH,
                input_example=input_example,
            )
        except Exception as exc:
            raise ImportStepFailed("log model", exc) from exc
        return run.info.run_id


def log_split_inputs(
    frames: dict[str, pd.DataFrame], *, source: str, dataset: str, blueprint: Blueprint
) -> None:
    """``mlflow.log_input`` per split: name ``<dataset>-<split>``, the source, schema, digest.

    Named as the training run names its inputs (``candidates.log_dataset_inputs``): the
    dataset argument the pipeline gets (a shipped table's name, ``file`` for ``--data``),
    so ``driftloop datasets`` lists an import's rows beside the trainings on the same rows.
    """
    import mlflow

    for split, frame in frames.items():
        with warnings.catch_warnings():
            # MLflow warns that a plain path/name "may not be resolvable" (it is recorded as
            # given) and hints about integer columns in the inferred schema
            warnings.simplefilter("ignore")
            logged = mlflow.data.from_pandas(
                frame, source=source, name=f"{dataset}-{split}", targets=blueprint.target_column
            )
            mlflow.log_input(logged, context=INPUT_CONTEXTS.get(split, split))


def _evaluate(run_id: str, test_path: Path, blueprint: Blueprint, settings: Settings) -> dict:
    from driftloop.training.evaluate import evaluate_run

    return evaluate_run(run_id, test_path, blueprint, settings=settings)


def _register(
    name: str,
    run_id: str,
    blueprint: Blueprint,
    fingerprints: dict,
    test_metrics: dict,
    dataset: str,
    data: str,
    imported_from: str,
    settings: Settings,
) -> str:
    """The version, with the lineage tags the training pipeline's register step writes."""
    from driftloop.lineage import TAG_IMPORTED_FROM, TAG_SPLIT_SCHEME, data_tags, version_tags
    from driftloop.registry import register_from_run

    primary = blueprint.primary_metric
    tags = version_tags(
        fingerprints["dataset"],
        {split: fingerprints[split] for split in SPLIT_NAMES},
        primary,
        test_metrics[primary],
        "test",
        blueprint=blueprint.spec,
        flavour=blueprint.flavour,
    ) | data_tags(dataset, data)
    tags[TAG_SPLIT_SCHEME] = fingerprints["scheme"]
    tags[TAG_IMPORTED_FROM] = imported_from
    registered = register_from_run(
        name, run_id, json.dumps(tags), tracking_uri=settings.resolved_tracking_uri
    )
    return json.loads(registered)["version"]


def _smoke(name: str, version: str, blueprint: Blueprint, test: pd.DataFrame, timeout_s: float):
    from driftloop.serving.smoke import smoke_serve

    example = blueprint.input_example(test)
    samples = json.loads(example.to_json(orient="records", date_format="iso"))
    return smoke_serve(f"models:/{name}/{version}", samples, timeout_s=timeout_s)


def _gate(name, version, blueprint, test_path, test_fingerprint, settings):
    from driftloop.training.gate import gate

    return gate(name, version, blueprint, test_path, test_fingerprint, settings)


def _fit_reference(name: str, version: str, paths: dict[str, Path], settings: Settings) -> str:
    from driftloop.monitor.reference import fit_reference

    return str(fit_reference(name, version, [paths["val"], paths["test"]], settings))


def _promote(name: str, version: str, settings: Settings) -> dict:
    from driftloop.deploy import get_deployer
    from driftloop.registry import promote_version

    promoted = json.loads(promote_version(name, version, settings.resolved_tracking_uri))
    rollout = get_deployer(settings).roll_out(name, version)
    promoted["rollout"] = rollout.to_dict() if hasattr(rollout, "to_dict") else str(rollout)
    return promoted


# --- helpers -----------------------------------------------------------------------
def _failing_as(step: str, function: Callable, *args: Any) -> Any:
    try:
        return function(*args)
    except ImportStepFailed:
        raise
    except Exception as exc:
        raise ImportStepFailed(step, exc) from exc


def _stepper(progress: Callable[[StepEvent], None] | None, timings: dict[str, float]):
    @contextmanager
    def step(title: str) -> Iterator[dict]:
        if progress:
            progress(StepEvent(title, "started"))
        started = time.perf_counter()
        found: dict = {}
        try:
            yield found
        except BaseException:
            if progress:
                progress(StepEvent(title, "failed", time.perf_counter() - started))
            raise
        timings[title] = round(time.perf_counter() - started, 3)
        if progress:
            progress(StepEvent(title, "done", timings[title], found.get("detail", "")))

    return step


def _class_name(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if steps:
        return f"{type(model).__name__}({', '.join(type(s[1]).__name__ for s in steps)})"
    return type(model).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return text.splitlines()[0] if text else type(exc).__name__
