"""The pipelines compile to KFP IR that a cluster can run, and the checked-in YAML is current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPILED = REPO_ROOT / "pipelines" / "compiled"

TRAINING_TASKS = {
    "ingest",
    "validate",
    "split",
    "train",
    "evaluate",
    "register",
    "smoke-serve",
    "promote-challenger",
    "gate",
    "fit-drift-reference",
    "promote",
}
RETRAINING_TASKS = TRAINING_TASKS | {"rollback", "merge-feedback"}
CANARY_PASSWORD = "s3cr3t-canary"
CANARY_STORE_URL = f"postgresql+psycopg://driftloop:{CANARY_PASSWORD}@db.internal:5432/driftloop"
SECRET_ENV = {
    "MLFLOW_TRACKING_URI",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_S3_ENDPOINT_URL",
}


def _compile(out: Path, env_overrides: dict[str, str | None] | None = None) -> None:
    """Compile in a fresh interpreter: the base image is fixed when components import."""
    env = dict(os.environ)
    env.pop("DRIFTLOOP_BASE_IMAGE", None)
    for name, value in (env_overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    subprocess.run(
        [sys.executable, "-m", "pipelines.compile", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _load(path: Path) -> dict:
    """The pipeline spec, with the platform spec (the second YAML document) merged in."""
    spec, *platform = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    for document in platform:
        spec.setdefault("platforms", {}).update(document.get("platforms", {}))
    return spec


def _all_tasks(spec: dict) -> set[str]:
    """Every task name in the root DAG and in the condition sub-DAGs."""
    names = set(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        names.update(component.get("dag", {}).get("tasks", {}))
    return {name for name in names if not name.startswith("condition-")}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compiled")
    _compile(out)
    return out


@pytest.fixture(scope="module")
def custom_image(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("compiled-custom")
    image = "registry.example.org/team/driftloop:9.9.9"
    # a store URL with a password in the compiling shell must not reach the IR
    _compile(out, {"DRIFTLOOP_BASE_IMAGE": image, "DRIFTLOOP_STORE_URL": CANARY_STORE_URL})
    return out, image


@pytest.mark.parametrize(
    ("name", "tasks"), [("training", TRAINING_TASKS), ("retraining", RETRAINING_TASKS)]
)
def test_compiled_pipeline_has_every_step(fresh, name, tasks):
    spec = _load(fresh / f"{name}.yaml")
    assert _all_tasks(spec) == tasks
    assert spec["pipelineInfo"]["name"] == f"driftloop-{name}"


@pytest.mark.parametrize("name", ["training", "retraining"])
def test_checked_in_yaml_matches_a_fresh_compile(fresh, name):
    checked_in = COMPILED / f"{name}.yaml"
    assert checked_in.is_file(), f"{checked_in} missing: run `make compile` and commit it"
    assert checked_in.read_text(encoding="utf-8") == (fresh / f"{name}.yaml").read_text(
        encoding="utf-8"
    ), f"{checked_in} is out of date: run `make compile` and commit it"


@pytest.mark.parametrize("name", ["training", "retraining"])
def test_every_executor_runs_the_configured_image_without_pip(custom_image, name):
    out, image = custom_image
    executors = _load(out / f"{name}.yaml")["deploymentSpec"]["executors"]
    assert executors
    for executor_name, executor in executors.items():
        container = executor["container"]
        assert container["image"] == image, executor_name
        # the image ships kfp; a pod without a package index must not try pip
        assert "pip install" not in " ".join(container["command"]), executor_name
        assert container["resources"]["cpuLimit"] > 0, executor_name
        assert container["resources"]["memoryLimit"] > 0, executor_name


def test_default_image_is_the_settings_default(fresh):
    from driftloop.settings import Settings

    default = Settings.model_fields["base_image"].default
    executors = _load(fresh / "training.yaml")["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {default}


@pytest.mark.parametrize("name", ["training", "retraining"])
def test_kubernetes_platform_spec_carries_secrets_and_pull_policy(fresh, name):
    spec = _load(fresh / f"{name}.yaml")
    executors = spec["deploymentSpec"]["executors"]
    platform = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(platform) == set(executors)
    for executor_name, config in platform.items():
        assert config["imagePullPolicy"] == "IfNotPresent", executor_name
        env = {item["envVar"] for secret in config["secretAsEnv"] for item in secret["keyToEnv"]}
        assert SECRET_ENV <= env, executor_name
        secrets = {secret["secretName"] for secret in config["secretAsEnv"]}
        assert {"driftloop-mlflow", "driftloop-minio"} <= secrets, executor_name
        # credentials come from Secrets only, never from literal env in the IR
        literal = executors[executor_name]["container"].get("env", [])
        assert not {item["name"] for item in literal} & SECRET_ENV, executor_name


def test_only_the_feedback_step_reads_the_store_secret(fresh):
    platform = _load(fresh / "retraining.yaml")["platforms"]["kubernetes"]["deploymentSpec"]
    with_store = {
        name
        for name, config in platform["executors"].items()
        if any(s["secretName"] == "driftloop-store" for s in config["secretAsEnv"])
    }
    assert with_store == {"exec-merge-feedback"}


def test_promotion_is_conditional_on_the_floor_then_the_gate(fresh):
    spec = _load(fresh / "training.yaml")
    root = spec["root"]["dag"]["tasks"]
    floor = root["condition-1"]
    assert floor["taskInfo"]["name"] == "passed-floor"
    assert "promote-challenger" in floor["triggerPolicy"]["condition"]
    assert "'challenger'" in floor["triggerPolicy"]["condition"]
    branch = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert set(branch) == {"gate", "fit-drift-reference", "condition-2"}
    wins = branch["condition-2"]
    assert wins["taskInfo"]["name"] == "challenger-wins"
    assert "gate" in wins["triggerPolicy"]["condition"]
    assert "'promote'" in wins["triggerPolicy"]["condition"]
    assert set(spec["components"]["comp-condition-2"]["dag"]["tasks"]) == {"promote"}


def test_tasks_show_the_five_steps_of_a_gated_deployment(fresh):
    from pipelines._steps import DISPLAY_NAMES

    spec = _load(fresh / "retraining.yaml")
    shown = {}
    for component in [spec["root"], *spec["components"].values()]:
        for name, task in component.get("dag", {}).get("tasks", {}).items():
            shown[name] = task["taskInfo"]["name"]
    steps = {name: shown[name] for name in RETRAINING_TASKS}
    assert steps == {name: DISPLAY_NAMES[name] for name in RETRAINING_TASKS}
    assert steps["split"].startswith("01 generate splits")
    assert steps["train"].startswith("02 train with HPO")
    assert steps["register"].startswith("03 log and register")
    assert steps["promote-challenger"].startswith("04 promote to challenger")
    assert steps["gate"].startswith("05 validate against champion")


def test_retraining_trains_only_when_the_rollback_policy_says_retrain(fresh):
    spec = _load(fresh / "retraining.yaml")
    root_tasks = spec["root"]["dag"]["tasks"]
    assert set(root_tasks) == {"rollback", "condition-1"}
    condition = root_tasks["condition-1"]["triggerPolicy"]["condition"]
    assert "rollback" in condition and "'retrain'" in condition
    # the retrain branch holds the training steps (and the floor's branch, with the gate)
    branch = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert {"ingest", "merge-feedback", "train", "promote-challenger"} <= set(branch)
    assert "gate" in spec["components"]["comp-condition-2"]["dag"]["tasks"]


# outputs are a pure function of the input artifact and parameters
PURE_STEPS = {"validate", "split"}


@pytest.mark.parametrize("name", ["training", "retraining"])
def test_only_pure_steps_are_cached(fresh, name):
    """Registry writes, feedback reads and data-source reads are never replayed from cache."""
    spec = _load(fresh / f"{name}.yaml")
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    cached = set()
    for dag in dags:
        for task_name, task in dag["tasks"].items():
            if not task_name.startswith("condition-"):
                if task.get("cachingOptions", {}).get("enableCache", False):
                    cached.add(task_name)
    assert cached == PURE_STEPS


def test_compile_rejects_an_unknown_pipeline(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path), "nope"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown pipeline 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["training", "retraining"])
def test_checked_in_yaml_loads_back_as_a_kfp_component(name):
    from kfp import components

    loaded = components.load_component_from_file(str(COMPILED / f"{name}.yaml"))
    assert loaded.name == f"driftloop-{name}"
    assert "model_name" in loaded.component_spec.inputs
    if name == "retraining":
        assert {"reason", "rollback_window_hours"} <= set(loaded.component_spec.inputs)


@pytest.mark.parametrize("name", ["training", "retraining"])
def test_no_secret_is_a_pipeline_or_task_parameter(custom_image, name):
    """KFP stores, shows and logs parameters: credentials reach tasks from Secrets only."""
    out, _ = custom_image
    text = (out / f"{name}.yaml").read_text(encoding="utf-8")
    assert CANARY_PASSWORD not in text and "db.internal" not in text
    spec = _load(out / f"{name}.yaml")
    definitions = [spec["root"]] + list(spec["components"].values())
    parameters = {
        parameter
        for definition in definitions
        for parameter in definition.get("inputDefinitions", {}).get("parameters", {})
    }
    secret_like = ("store_url", "password", "token", "secret", "tracking_uri", "dsn")
    assert not {p for p in parameters if any(word in p.lower() for word in secret_like)}
