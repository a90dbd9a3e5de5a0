"""Failure story (a): a registered model whose runtime the serving environment cannot load.

Two versions that register fine but cannot serve here, each stopped by
smoke-serve with a message naming the mismatch, while the champion's alias
stays where it was (and no challenger alias appears):

* logged with a requirement this environment does not satisfy (scikit-learn
  pinned at a release other than the installed one, and a distribution that is
  not installed at all). MLflow only *warns* about such a mismatch and the
  model would load and answer, so without the check it would be promoted;
* pickled with a class from a module the serving environment does not have:
  the predictor dies while loading and the message names the module.

In the pipeline every alias-moving step (promote to challenger, gate, promote)
runs after smoke-serve; the last test checks that on the compiled pipeline.

Guards (each test fails without its own), reproducible with
``DRIFTLOOP_TEST_DISABLE_GUARD=runtime-requirements`` (resp. ``module-message``)
``.venv/bin/python -m pytest -p tests.integration.guards_off`` on this file:
``driftloop.serving.smoke.check_runtime`` (the requirement/Python check before
the predictor starts) and ``driftloop.serving.smoke._load_failure`` (names the
missing module of a predictor that died loading).
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from driftloop.serving.smoke import RuntimeMismatchError, smoke_serve
from driftloop.step_host import ENV_VAR, StepHost, run_step
from tests.integration.conftest_serving import train_text_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "sentiment"


def _register(tracking_uri: str, model, requirements: list[str]) -> str:
    import mlflow
    import mlflow.sklearn

    from driftloop.blueprints import BlueprintSpec
    from driftloop.lineage import blueprint_tags
    from driftloop.registry import scoped_tracking_uri

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("runtime-mismatch")
    # artifacts beside the test's database, not in ./mlruns of whatever directory pytest ran in
    artifacts = Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment("runtime-mismatch", artifact_location=artifacts.as_uri())
    )
    with scoped_tracking_uri(tracking_uri):
        with mlflow.start_run(experiment_id=experiment_id):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                pip_requirements=requirements,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            )
        tags = blueprint_tags(BlueprintSpec("sentiment"), "sklearn")
        return str(mlflow.register_model(info.model_uri, MODEL, tags=tags).version)


@pytest.fixture
def registry(home):
    """The registry with a servable champion, v1."""
    from driftloop.registry import ModelRegistry

    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri)
    champion = _register(uri, train_text_model(10.0), ["scikit-learn"])
    registry.promote(MODEL, champion)
    return registry


def _aliases(registry) -> dict[str, str]:
    return {alias: str(version) for alias, version in registry.aliases(MODEL).items()}


def test_a_requirement_the_environment_lacks_is_stopped_before_any_alias_moves(registry):
    sklearn = metadata.version("scikit-learn")
    other = "1.4.2" if sklearn != "1.4.2" else "1.5.0"
    version = _register(
        registry.tracking_uri,
        train_text_model(10.0),
        [f"scikit-learn=={other}", "driftloop-absent-runtime==2.0"],
    )
    before = _aliases(registry)
    with pytest.raises(RuntimeMismatchError) as stopped:
        smoke_serve(f"models:/{MODEL}/{version}", ["great product"], timeout_s=120)
    message = str(stopped.value)
    print(f"\n{message}")
    assert message.startswith("runtime mismatch:")
    assert f"scikit-learn=={other} (installed: scikit-learn {sklearn})" in message
    assert "driftloop-absent-runtime==2.0 (not installed)" in message
    assert _aliases(registry) == before == {"champion": "1"}


def _trainer_only_model(tmp_path, monkeypatch):
    """A text model with a transformer from a package that exists only in ``tmp_path``
    (where the model was trained)."""
    package = tmp_path / "trainer_only"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text(
        textwrap.dedent(
            """
            from sklearn.base import BaseEstimator, TransformerMixin

            class Lowercase(BaseEstimator, TransformerMixin):
                def fit(self, texts, labels=None):
                    return self

                def transform(self, texts):
                    return [str(text).lower() for text in texts]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from trainer_only.steps import Lowercase

    return Pipeline(
        [("lower", Lowercase()), ("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]
    ).fit(["great", "awful", "good", "bad"], ["positive", "negative", "positive", "negative"])


def test_a_module_the_environment_lacks_is_named(registry, tmp_path, monkeypatch):
    model = _trainer_only_model(tmp_path, monkeypatch)
    version = _register(registry.tracking_uri, model, ["scikit-learn"])
    before = _aliases(registry)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    try:
        with pytest.raises(RuntimeMismatchError) as stopped:
            smoke_serve(f"models:/{MODEL}/{version}", ["great product"], timeout_s=120)
    finally:
        sys.modules.pop("trainer_only.steps", None)
        sys.modules.pop("trainer_only", None)
    message = str(stopped.value)
    print(f"\n{message[:300]}")
    assert "runtime mismatch: the model needs module 'trainer_only'" in message
    assert _aliases(registry) == before == {"champion": "1"}


def test_every_alias_moving_step_runs_after_smoke_serve(tmp_path):
    import yaml
    from kfp.compiler import Compiler
    from pipelines.retraining import retraining_pipeline
    from pipelines.training import training_pipeline

    for pipeline in (training_pipeline, retraining_pipeline):
        path = tmp_path / f"{pipeline.name}.yaml"
        Compiler().compile(pipeline, str(path))
        spec = next(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        tasks, owner = _all_tasks(spec)
        for step in ("promote-challenger", "gate", "promote"):
            assert "smoke-serve" in _upstream(tasks, owner, step), (pipeline.name, step)


def _all_tasks(spec: dict) -> tuple[dict[str, dict], dict[str, str]]:
    """(task name -> task spec over every DAG, task name -> the condition task it runs in)."""
    dags = {"root": spec["root"]} | spec.get("components", {})
    tasks: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for component in dags.values():
        for name, task in component.get("dag", {}).get("tasks", {}).items():
            tasks[name] = task
            inner = dags.get(task.get("componentRef", {}).get("name", ""), {})
            for child in inner.get("dag", {}).get("tasks", {}):
                owner[child] = name
    return tasks, owner


def _upstream(tasks: dict[str, dict], owner: dict[str, str], name: str) -> set[str]:
    """Every task ``name`` waits for, directly, through its branch, or further up."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        before = set(tasks.get(current, {}).get("dependentTasks", []))
        if current in owner:
            before.add(owner[current])
        for task in before - seen:
            seen.add(task)
            pending.append(task)
    return seen


def test_a_module_only_the_warm_step_host_imported_is_still_missing(
    registry, tmp_path, monkeypatch
):
    """In the warm step host smoke-serve forks its predictor; the host imported
    ``trainer_only`` from a PYTHONPATH the step's environment does not have, so the forked
    server must not find it either -- as a pod started with that environment would not."""
    model = _trainer_only_model(tmp_path, monkeypatch)
    version = _register(registry.tracking_uri, model, ["scikit-learn"])
    log_path = tmp_path / "step-host.log"
    preload = ["driftloop.serving.smoke", "driftloop.serving.server", "trainer_only.steps"]
    host = StepHost.start(
        preload, log_path=log_path, env=dict(os.environ, PYTHONPATH=str(tmp_path))
    )
    try:
        deadline = time.monotonic() + 120
        while "step host ready" not in (log_path.read_text() if log_path.exists() else ""):
            assert time.monotonic() < deadline, "step host did not finish its imports"
            time.sleep(0.2)
        assert "not preloaded" not in log_path.read_text()
        monkeypatch.delenv("PYTHONPATH", raising=False)
        monkeypatch.setenv(ENV_VAR, host.socket_path)
        with pytest.raises(RuntimeMismatchError) as stopped:
            run_step(
                "driftloop.serving.smoke:smoke_serve",
                f"models:/{MODEL}/{version}",
                ["great product"],
                timeout_s=120,
            )
    finally:
        host.stop()
        sys.modules.pop("trainer_only.steps", None)
        sys.modules.pop("trainer_only", None)
    assert "runtime mismatch: the model needs module 'trainer_only'" in str(stopped.value)
    assert _aliases(registry) == {"champion": "1"}
