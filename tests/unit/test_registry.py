"""ModelRegistry against a real MLflow SQLite registry, plus lineage tags."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from driftloop import lineage
from driftloop.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    ModelNotFoundError,
    ModelRegistry,
    RegistryError,
    RollbackError,
    VersionNotFoundError,
    promote_version,
    register_from_run,
    rollback_model,
)
from tests.unit import test_registry_support as support

logged_models = support.logged_models  # fixture shared with the gate and CLI tests


def unique(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def registry(logged_models) -> ModelRegistry:
    return ModelRegistry(logged_models.tracking_uri)


def test_register_logged_model_waits_ready_and_loads(registry, logged_models):
    name = unique()
    tags = lineage.version_tags(
        "ds-fp", {"train": "tr", "val": "va", "test": "te"}, "macro_f1", 0.8125
    )
    version = registry.register(name, logged_models.movies_run, tags)

    info = registry.get_version(name, version)
    assert version == "1"
    assert info.status == "READY"
    assert info.run_id == logged_models.movies_run
    assert info.source.startswith("models:/m-")  # MLflow 3 logged model, resolved from runs:/
    assert info.tag("metric.value") == "0.8125"
    assert info.tag("split.test_fingerprint") == "te"
    model = registry.load_sklearn(name, version)
    texts = logged_models.movies_test["text"].tolist()
    assert list(model.predict(texts)) == list(logged_models.movies_model.predict(texts))
    assert list(model.classes_) == ["negative", "positive"]


def test_register_plain_run_artifacts(registry, logged_models, tmp_path):
    import mlflow.sklearn
    from mlflow import MlflowClient

    client = MlflowClient(logged_models.tracking_uri)
    run = client.create_run(client.get_experiment_by_name("registry-tests").experiment_id)
    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(logged_models.weak_model, saved, pip_requirements=["scikit-learn"])
    client.log_artifacts(run.info.run_id, str(saved), "model")
    client.set_terminated(run.info.run_id)

    name = unique()
    version = registry.register(name, run.info.run_id, {})
    assert registry.get_version(name, version).source.endswith(f"{run.info.run_id}/artifacts/model")
    assert list(registry.load_sklearn(name, version).classes_) == ["negative", "positive"]


def test_register_rejects_unknown_run_and_missing_model(registry, logged_models):
    with pytest.raises(RegistryError, match="no MLflow run"):
        registry.register(unique(), "0" * 32, {})
    with pytest.raises(RegistryError, match="no model logged under 'elsewhere'"):
        registry.register(unique(), logged_models.movies_run, {}, artifact_path="elsewhere")


def test_promote_moves_previous_champion_and_clears_challenger(registry, logged_models):
    name = unique()
    v1 = registry.register(name, logged_models.movies_run, {})
    v2 = registry.register(name, logged_models.both_run, {})
    v3 = registry.register(name, logged_models.weak_run, {})

    assert registry.promote(name, v1) is None
    assert registry.aliases(name) == {CHAMPION: v1}
    assert registry.promoted_at(name) is not None

    registry.mark_challenger(name, v2)
    assert registry.promote(name, v2) == v1
    assert registry.aliases(name) == {CHAMPION: v2, PREVIOUS_CHAMPION: v1}

    registry.mark_challenger(name, v3)
    assert registry.promote(name, v2) is None  # already champion: nothing moves
    assert registry.aliases(name) == {CHAMPION: v2, PREVIOUS_CHAMPION: v1, CHALLENGER: v3}
    assert registry.version_by_alias(name, CHALLENGER).version == v3
    assert registry.model_uri(name) == f"models:/{name}@champion"
    assert registry.get_version(name, v2).aliases == [CHAMPION]


def test_rollback_restores_previous_and_tags_demoted(registry, logged_models):
    name = unique()
    v1 = registry.register(name, logged_models.movies_run, {})
    v2 = registry.register(name, logged_models.both_run, {})
    registry.promote(name, v1)
    with pytest.raises(RollbackError, match="no previous-champion"):
        registry.rollback(name)
    registry.promote(name, v2)

    assert registry.rollback(name, "LiveScoreDrop") == v1
    assert registry.aliases(name) == {CHAMPION: v1}
    demoted = registry.get_version(name, v2)
    assert demoted.tag("rolled_back_reason") == "LiveScoreDrop"
    assert demoted.tag("rolled_back_at")
    assert registry.get_version(name, v1).tag("restored_at")
    # the bad version cannot come back through a second rollback
    with pytest.raises(RollbackError):
        registry.rollback(name)


def test_unknown_model_version_and_alias_errors(registry, logged_models):
    name = unique()
    registry.register(name, logged_models.movies_run, {})
    with pytest.raises(ModelNotFoundError) as caught:
        registry.describe("no-such-model")
    message = str(caught.value)
    assert message.startswith("no registered model named 'no-such-model' (known: ")
    assert name in message
    with pytest.raises(ModelNotFoundError):
        registry.get_version("no-such-model", "1")
    with pytest.raises(VersionNotFoundError, match="has no version '7'"):
        registry.get_version(name, "7")
    with pytest.raises(ValueError, match="alias must be one of"):
        registry.set_alias(name, "production", "1")
    with pytest.raises(VersionNotFoundError):
        registry.promote(name, "9")
    assert registry.version_by_alias(name, CHAMPION) is None
    assert registry.exists(name) and not registry.exists("no-such-model")


def test_list_and_describe(registry, logged_models):
    name = unique("listed")
    tags = {"driftloop.metric.name": "macro_f1", "driftloop.metric.value": "0.91"}
    v1 = registry.register(name, logged_models.movies_run, tags)
    v2 = registry.register(name, logged_models.both_run, {"driftloop.metric.name": "macro_f1"})
    registry.promote(name, v1)
    registry.mark_challenger(name, v2)

    summary = next(s for s in registry.list_models() if s.name == name)
    assert (summary.champion, summary.challenger, summary.previous_champion) == (v1, v2, None)
    assert summary.latest_version == v2
    assert (summary.metric_name, summary.metric_value) == ("macro_f1", 0.91)

    details = registry.describe(name)
    assert [v.version for v in details.versions] == [v1, v2]
    assert details.versions[0].aliases == [CHAMPION]
    assert details.versions[1].aliases == [CHALLENGER]
    json.dumps(details.to_dict())  # serialisable for --json


def test_set_tags_stringifies(registry, logged_models):
    name = unique()
    version = registry.register(name, logged_models.movies_run, {})
    registry.set_tags(
        name, version, {"driftloop.decision": "keep", "driftloop.champion_score": 0.5}
    )
    assert registry.get_version(name, version).tags["driftloop.champion_score"] == "0.5"


def test_step_functions_speak_json(logged_models):
    name = unique()
    uri = logged_models.tracking_uri
    first = json.loads(
        register_from_run(name, logged_models.movies_run, '{"a": 1}', tracking_uri=uri)
    )
    second = json.loads(register_from_run(name, logged_models.both_run, "{}", tracking_uri=uri))
    assert first == {"name": name, "version": "1", "model_uri": f"models:/{name}/1"}
    assert json.loads(promote_version(name, "1", tracking_uri=uri))["previous_champion"] is None
    assert json.loads(promote_version(name, second["version"], tracking_uri=uri)) == {
        "name": name,
        "version": "2",
        "previous_champion": "1",
        "model_uri": f"models:/{name}@champion",
    }
    rolled = json.loads(rollback_model(name, "LiveScoreDrop", tracking_uri=uri))
    assert rolled == {"name": name, "champion": "1", "demoted": "2", "reason": "LiveScoreDrop"}
    with pytest.raises(ValueError, match="tags_json"):
        register_from_run(name, logged_models.movies_run, "[1, 2]", tracking_uri=uri)


def test_default_tracking_uri_comes_from_settings(home, logged_models, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged_models.tracking_uri)
    assert ModelRegistry().tracking_uri == logged_models.tracking_uri


# --- lineage ------------------------------------------------------------------
def test_git_commit_prefers_environment(monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_GIT_COMMIT", "abc123")
    assert lineage.git_commit() == "abc123"


def test_git_commit_from_checkout_or_unknown(monkeypatch):
    monkeypatch.delenv("DRIFTLOOP_GIT_COMMIT", raising=False)
    assert re.fullmatch(r"[0-9a-f]{40}", lineage.git_commit())
    monkeypatch.setenv("PATH", "/nonexistent")  # no git binary to ask
    assert lineage.git_commit() == "unknown"


def test_runtime_versions_lists_installed_packages():
    from importlib import metadata

    versions = lineage.runtime_versions()
    assert versions["mlflow"] == metadata.version("mlflow")
    assert versions["scikit-learn"] == metadata.version("scikit-learn")
    assert re.fullmatch(r"3\.\d+\.\d+", versions["python"])


def test_version_tags_round_trip_metric(monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_GIT_COMMIT", "deadbeef")
    value = 0.1 + 0.2  # not exactly representable in few digits
    tags = lineage.version_tags("dfp", {"train": "a", "val": "b", "test": "c"}, "macro_f1", value)
    assert float(tags["driftloop.metric.value"]) == value
    assert tags["driftloop.metric.split"] == "test"
    assert tags["driftloop.git_commit"] == "deadbeef"
    assert tags["driftloop.dataset_fingerprint"] == "dfp"
    assert [tags[f"driftloop.split.{s}_fingerprint"] for s in ("train", "val", "test")] == [
        "a",
        "b",
        "c",
    ]
    assert tags["driftloop.runtime.numpy"]
    assert all(isinstance(v, str) for v in tags.values())


def test_registry_leaves_the_global_tracking_uri_alone(logged_models, monkeypatch, tmp_path):
    import os

    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking

    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    # a module fixture elsewhere may have set MLflow's global URI before this test began
    monkeypatch.setattr(tracking, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    registry = ModelRegistry(logged_models.tracking_uri)
    name = unique()
    version = registry.register(name, logged_models.movies_run, {})
    registry.load_sklearn(name, version)
    assert os.environ["MLFLOW_TRACKING_URI"] == elsewhere
    assert mlflow.get_tracking_uri() == elsewhere
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    registry.load_sklearn(name, version)
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_delete_alias_is_idempotent(registry, logged_models):
    name = unique()
    version = registry.register(name, logged_models.movies_run, {})
    registry.mark_challenger(name, version)
    registry.delete_alias(name, CHALLENGER)
    registry.delete_alias(name, CHALLENGER)  # already gone: no error
    assert registry.aliases(name) == {}
    assert registry.get_version(name, version).aliases == []
