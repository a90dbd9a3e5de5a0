"""Helpers for the serving integration tests: real registered models (a text model, or any
blueprint trained without the pipeline) and a real predictor.

Imported explicitly by tests/integration/test_serving*.py (not a pytest conftest).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from driftloop.ports import free_ports
from driftloop.serving.smoke import SERVE_ENTRY

POSITIVE = [
    "great product, works perfectly",
    "excellent quality and fast delivery",
    "i love it, highly recommend",
    "wonderful, exactly as described",
    "very good value, happy with it",
    "amazing service and great price",
    "perfect fit and lovely colour",
    "fantastic, arrived early and works",
]
NEGATIVE = [
    "terrible product, broke after a day",
    "awful quality and slow delivery",
    "i hate it, do not buy",
    "horrible, nothing like described",
    "very bad value, disappointed",
    "worst service and poor price",
    "useless, arrived broken",
    "bad, never arrived and no refund",
]


def train_text_model(c: float = 10.0):
    """A sentiment-like sklearn Pipeline over strings with string classes."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline(
        [("tfidf", TfidfVectorizer(ngram_range=(1, 2))), ("clf", LogisticRegression(C=c))]
    )
    pipeline.fit(POSITIVE + NEGATIVE, ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE))
    return pipeline


def register_text_model(
    tracking_uri: str, name: str, *, c: float = 10.0, alias: str | None = "champion"
) -> str:
    """Log + register a model version; point ``alias`` at it. Returns the version."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    from driftloop.blueprints import BlueprintSpec
    from driftloop.lineage import blueprint_tags
    from driftloop.registry import scoped_tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("serving-tests")
    )
    # scoped: the pytest process's MLflow globals must not point at this test's database
    with scoped_tracking_uri(tracking_uri):
        with mlflow.start_run(experiment_id=experiment_id):
            info = mlflow.sklearn.log_model(
                train_text_model(c), name="model", pip_requirements=["scikit-learn"]
            )
        # the predictor serves a version as the blueprint tagged on it says
        tags = blueprint_tags(BlueprintSpec("sentiment"), "sklearn")
        version = mlflow.register_model(info.model_uri, name, tags=tags).version
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return str(version)


def table_frame(dataset: str) -> tuple[pd.DataFrame, str]:
    """A shipped table (penguins, diabetes) with its ``id`` column, and its default target."""
    from driftloop.datasets.tables import shipped_table, with_ids

    frame, target = shipped_table(dataset)
    return with_ids(frame)[0], target


@dataclass
class RegisteredBlueprintModel:
    name: str
    version: str
    blueprint: Any  # the Blueprint instance the version is tagged with
    model: Any  # the fitted model, as the predictor loads it
    train: pd.DataFrame
    val: pd.DataFrame
    result: Any = None  # the trainer's result: every candidate's metrics


def register_blueprint_model(
    tracking_uri: str,
    name: str,
    spec: Any,
    frame: pd.DataFrame,
    *,
    candidates: list[str],
    home: Path,
    alias: str | None = "champion",
    seed: int = 7,
    val_share: float = 0.25,
    split: Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]] | None = None,
) -> RegisteredBlueprintModel:
    """Train ``spec``'s ``candidates`` on ``frame``, register, tag and alias it, no pipeline.

    ``spec`` is anything ``get_blueprint`` takes (a name, a ``BlueprintSpec``, its JSON
    text, an instance); a blueprint whose task depends on the data is resolved on
    ``frame``. The version carries the lineage tags a pipeline writes (the blueprint
    spec and flavour included), so ``driftloop serve``, feedback and the monitor
    treat it as a pipeline-registered version. ``split``: frame -> (train, val) where
    shuffled rows would not do (interactions split in time); default: a seeded shuffle
    with ``val_share`` held out.
    """
    from driftloop.blueprints import get_blueprint
    from driftloop.lineage import version_tags
    from driftloop.registry import ModelRegistry, scoped_tracking_uri
    from driftloop.settings import Settings
    from driftloop.training.candidates import train_candidates

    blueprint = get_blueprint(spec)
    if hasattr(blueprint, "resolve"):
        blueprint, _ = blueprint.resolve(frame)
    if split is not None:
        train, val = split(frame)
    else:
        shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        cut = int(len(shuffled) * (1 - val_share))
        train, val = shuffled.iloc[:cut], shuffled.iloc[cut:]
    # scoped: training sets MLflow's process-global URI; this process's other tests
    # must not keep talking to this registry
    with scoped_tracking_uri(tracking_uri):
        result = train_candidates(
            blueprint,
            train,
            val,
            seed=seed,
            experiment="serving-tests",
            settings=Settings(home=home),
            candidates=candidates,
        )
    registry = ModelRegistry(tracking_uri)
    primary = blueprint.primary_metric
    tags = version_tags(
        dataset_fingerprint="test",
        split_fingerprints={},
        metric_name=primary,
        metric_value=result.val_metrics[primary],
        metric_split="val",
        blueprint=blueprint.spec,
        flavour=blueprint.flavour,
    )
    version = registry.register(name, result.run_id, tags=tags)
    if alias:
        registry.set_alias(name, alias, version)
    return RegisteredBlueprintModel(name, version, blueprint, result.model, train, val, result)


def set_alias(tracking_uri: str, name: str, alias: str, version: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(
        name, alias, version
    )


@dataclass
class RunningPredictor:
    name: str
    http_port: int
    grpc_port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@contextmanager
def running_predictor(
    name: str,
    home: Path,
    *,
    env: dict | None = None,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 90.0,
):
    """``driftloop serve NAME`` in a subprocess on free loopback ports; stopped on exit."""
    http_port, grpc_port = free_ports(2)
    log_path = home / f"predictor-{http_port}.log"
    process_env = dict(os.environ)
    process_env.update(env or {})
    command = [
        sys.executable,
        "-c",
        SERVE_ENTRY,
        "serve",
        name,
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--workers",
        str(workers),
        *extra_args,
    ]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=process_env
        )
    predictor = RunningPredictor(name, http_port, grpc_port, process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"predictor exited {process.returncode}:\n{predictor.log()}")
            try:
                if (
                    httpx.get(f"{predictor.url}/v2/models/{name}/ready", timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"predictor not ready in {ready_timeout}s:\n{predictor.log()}")
            time.sleep(0.2)
        yield predictor
    finally:
        predictor.stop()


def v2_body(texts: list[str], request_id: str | None = None) -> dict:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    if request_id:
        body["id"] = request_id
    return body
