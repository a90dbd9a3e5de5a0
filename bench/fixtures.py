"""The models every section measures, built fresh into a private DRIFTLOOP_HOME.

- ``sentiment``: the sentiment champion, trained with driftloop's own
  training code (blueprint candidates, MLflow run, registry, champion alias).
- ``tabular-xgb``: an 8-feature, 50-tree XGBoost classifier on scikit-learn's
  generated classification data, logged with the ``mlflow.xgboost`` flavour.

Both are registered under alias ``champion`` so ``models:/NAME@champion``
resolves for driftloop's predictor, and downloaded to a local directory for
MLServer (which reads an MLflow model folder, not the registry).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TABULAR_FEATURES = 8
TABULAR_TREES = 50


@dataclass
class ModelFixture:
    name: str
    kind: str  # "text" | "tabular"
    flavor: str  # mlflow flavour the raw estimator loads with
    model_uri: str  # models:/NAME@champion
    local_dir: Path  # the MLflow model folder on disk
    estimator: Any
    samples: list  # inputs the load generators send (texts or feature rows)
    trained_by: str  # how the model was built, for the report
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def batch(self, size: int) -> list:
        return [self.samples[i % len(self.samples)] for i in range(size)]

    def v2_request(self, size: int = 1) -> dict:
        rows = self.batch(size)
        if self.kind == "text":
            return {
                "inputs": [{"name": "text", "datatype": "BYTES", "shape": [size], "data": rows}]
            }
        return {
            "inputs": [
                {
                    "name": "input-0",
                    "datatype": "FP32",
                    "shape": [size, TABULAR_FEATURES],
                    "data": [float(x) for row in rows for x in row],
                }
            ]
        }

    def v1_request(self, size: int = 1) -> dict:
        return {"instances": self.batch(size)}

    def body(self, protocol: str, size: int = 1) -> bytes:
        request = self.v2_request(size) if protocol == "v2" else self.v1_request(size)
        return json.dumps(request).encode()

    def inprocess_predict(self, size: int = 1):
        rows = self.batch(size)
        features = rows if self.kind == "text" else np.asarray(rows, dtype=np.float32)
        return self.estimator.predict_proba(features)


@contextmanager
def driftloop_home(path: Path):
    """Point driftloop, MLflow and every child process at ``path`` for the block."""
    path.mkdir(parents=True, exist_ok=True)
    saved = {key: os.environ.get(key) for key in ("DRIFTLOOP_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["DRIFTLOOP_HOME"] = str(path)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{path / 'mlflow.db'}"
    # Pin MLflow's process-global URI too: a temporary global switch elsewhere
    # (mlflow's _use_tracking_uri) that restores "unset" also deletes the
    # MLFLOW_TRACKING_URI variable, and later calls would fall back to ./mlflow.db.
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    _clear_settings_cache()
    try:
        yield path
    finally:
        mlflow.set_tracking_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _clear_settings_cache()


def _clear_settings_cache() -> None:
    try:
        from driftloop.settings import get_settings

        get_settings.cache_clear()
    except ImportError:
        pass


def _artifact_location(home: Path) -> str:
    return (home / "mlartifacts").as_uri()


def _ensure_experiment(name: str, home: Path) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        return mlflow.create_experiment(name, artifact_location=_artifact_location(home))
    return experiment.experiment_id


def _register_champion(name: str, run_id: str, tags: dict[str, str]) -> str:
    """Register runs:/RUN/model as NAME and point alias champion at it.

    driftloop's registry when it is installed; the plain MLflow client calls it
    wraps otherwise, so the serving baselines can be measured on their own.
    """
    try:
        from driftloop.registry import ModelRegistry
    except ImportError:
        from mlflow import MlflowClient

        client = MlflowClient()
        try:
            client.create_registered_model(name)
        except Exception:  # already registered by an earlier fixture in this home
            pass
        version = client.create_model_version(name, f"runs:/{run_id}/model", run_id, tags=tags)
        client.set_registered_model_alias(name, "champion", version.version)
        return version.version
    registry = ModelRegistry()
    version = registry.register(name, run_id, tags)
    registry.promote(name, version)
    return version


def _local_model_dir(model_uri: str) -> Path:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))


def sentiment_text_samples(frame, count: int = 256, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = frame["text"].astype(str).tolist()
    picks = rng.choice(len(texts), size=min(count, len(texts)), replace=False)
    return [texts[i] for i in picks]


def build_sentiment(
    home: Path, *, seed: int = 42, max_rows: int | None = None, name: str = "sentiment"
) -> ModelFixture:
    """Train the sentiment champion with driftloop's training code and register it."""
    from driftloop.blueprints import get_blueprint
    from driftloop.datasets import load_dataset
    from driftloop.lineage import blueprint_tags, split_fingerprint_tag
    from driftloop.training.candidates import train_candidates
    from driftloop.training.splits import split_frame

    blueprint = get_blueprint("sentiment")
    frame = load_dataset(blueprint.default_dataset)
    if max_rows and len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)
    splits = split_frame(frame, seed=seed)
    started = time.perf_counter()
    result = train_candidates(blueprint, splits.train, splits.val, seed=seed, experiment="bench")
    seconds = time.perf_counter() - started
    tags = {
        split_fingerprint_tag(split): splits.fingerprints[split]
        for split in ("train", "val", "test")
    } | blueprint_tags(blueprint.spec, blueprint.flavour)
    version = _register_champion(name, result.run_id, tags)
    model_uri = f"models:/{name}@champion"
    return ModelFixture(
        name=name,
        kind="text",
        flavor="sklearn",
        model_uri=model_uri,
        local_dir=_local_model_dir(model_uri),
        estimator=result.model,
        samples=sentiment_text_samples(splits.test, seed=seed),
        trained_by=(
            f"driftloop.training.candidates.train_candidates on {blueprint.default_dataset} "
            f"({len(splits.train)} train rows, winner {result.best_candidate}, version {version})"
        ),
        train_seconds=seconds,
        extra={
            "test_frame": splits.test,
            "val_frame": splits.val,
            "version": version,
            "best_candidate": result.best_candidate,
        },
    )


def build_tabular(home: Path, *, seed: int = 42, name: str = "tabular-xgb") -> ModelFixture:
    """An 8-feature, 50-tree XGBoost classifier, logged with mlflow.xgboost and registered."""
    import mlflow
    import mlflow.xgboost
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from xgboost import XGBClassifier

    features, target = make_classification(
        n_samples=5000, n_features=TABULAR_FEATURES, n_informative=5, random_state=seed
    )
    features = features.astype(np.float32)
    model = XGBClassifier(n_estimators=TABULAR_TREES, max_depth=4, n_jobs=1, random_state=seed)
    started = time.perf_counter()
    model.fit(features, target)
    seconds = time.perf_counter() - started
    mlflow.set_experiment(experiment_id=_ensure_experiment("bench", home))
    with mlflow.start_run(run_name="bench-tabular-xgb") as run:
        mlflow.xgboost.log_model(
            model,
            name="model",
            signature=infer_signature(features[:5], model.predict(features[:5])),
        )
    from driftloop.lineage import tag_key

    version = _register_champion(name, run.info.run_id, {tag_key("bench"): "tabular"})
    model_uri = f"models:/{name}@champion"
    return ModelFixture(
        name=name,
        kind="tabular",
        flavor="xgboost",
        model_uri=model_uri,
        local_dir=_local_model_dir(model_uri),
        estimator=model,
        samples=features[:256].tolist(),
        trained_by=f"xgboost.XGBClassifier({TABULAR_TREES} trees, {TABULAR_FEATURES} features), "
        f"make_classification(5000, seed={seed}), version {version}",
        train_seconds=seconds,
    )
