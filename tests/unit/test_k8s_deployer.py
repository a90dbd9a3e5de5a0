"""Deployer logic that needs no server: target choice, patch building, readiness."""

from __future__ import annotations

import pytest

from driftloop.deploy import DeployError, get_deployer, registry_model_uri
from driftloop.deploy.kubernetes import (
    MODEL_URI_ENV,
    REVISION_ANNOTATION,
    readiness,
    rollout_patch,
    with_model_uri,
)
from driftloop.deploy.local import DEFAULT_PREDICTOR_URL, LocalDeployer


def test_local_target_gets_the_local_deployer(settings):
    deployer = get_deployer(settings)
    assert isinstance(deployer, LocalDeployer)
    assert deployer.predictor_url == DEFAULT_PREDICTOR_URL


def test_kubernetes_target_without_credentials_is_a_clear_error(home, tmp_path, monkeypatch):
    from driftloop.settings import Settings

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(DeployError, match="no usable Kubernetes credentials .*missing-kubeconfig"):
        get_deployer(Settings(home=home, target="kubernetes"))


def test_registry_uri_names_model_and_version():
    assert registry_model_uri("sentiment", "12") == "models:/sentiment/12"
    with pytest.raises(DeployError, match="--version"):
        registry_model_uri("sentiment", "")


def test_with_model_uri_replaces_only_its_own_entry():
    env = [
        {"name": "A", "value": "1"},
        {"name": MODEL_URI_ENV, "value": "old"},
        {"name": "B", "value": "2"},
    ]
    updated = with_model_uri(env, "models:/m/2")
    assert updated == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
        {"name": MODEL_URI_ENV, "value": "models:/m/2"},
    ]
    assert env[1]["value"] == "old"  # input untouched
    assert with_model_uri(None, "u") == [{"name": MODEL_URI_ENV, "value": "u"}]


def test_patch_for_model_spec_sets_env_annotations_and_resource_version():
    isvc = {
        "metadata": {"name": "m", "resourceVersion": "41"},
        "spec": {"predictor": {"model": {"env": [{"name": "X", "value": "y"}]}}},
    }
    patch = rollout_patch(isvc, "models:/m/3", "3", "3-rev")
    assert patch["metadata"]["resourceVersion"] == "41"
    assert patch["metadata"]["annotations"][REVISION_ANNOTATION] == "3-rev"
    assert patch["spec"]["predictor"]["annotations"] == {REVISION_ANNOTATION: "3-rev"}
    assert patch["spec"]["predictor"]["model"]["env"] == [
        {"name": "X", "value": "y"},
        {"name": MODEL_URI_ENV, "value": "models:/m/3"},
    ]


def test_patch_for_custom_containers_targets_the_kserve_container():
    isvc = {
        "metadata": {"name": "m"},
        "spec": {
            "predictor": {
                "containers": [
                    {"name": "sidecar", "image": "s"},
                    {"name": "kserve-container", "image": "p", "env": []},
                ]
            }
        },
    }
    patch = rollout_patch(isvc, "models:/m/1", "1", "r")
    containers = patch["spec"]["predictor"]["containers"]
    assert containers[0] == {"name": "sidecar", "image": "s"}
    assert containers[1]["env"] == [{"name": MODEL_URI_ENV, "value": "models:/m/1"}]
    assert "resourceVersion" not in patch["metadata"]
    assert isvc["spec"]["predictor"]["containers"][1]["env"] == []  # input untouched


def test_patch_refuses_a_predictor_without_model_or_containers():
    with pytest.raises(DeployError, match="neither spec.predictor.model"):
        rollout_patch({"metadata": {"name": "m"}, "spec": {"predictor": {}}}, "u", "1", "r")


@pytest.mark.parametrize(
    ("status", "generation", "ready", "why"),
    [
        (
            {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]},
            2,
            True,
            "Ready=True",
        ),
        (
            {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
            2,
            False,
            "observed generation 1",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [{"type": "Ready", "status": "False", "reason": "Boom"}],
            },
            2,
            False,
            "Boom",
        ),
        ({}, 2, False, "no Ready condition"),
        ({"conditions": [{"type": "Ready", "status": "True"}]}, None, True, "Ready=True"),
    ],
)
def test_readiness(status, generation, ready, why):
    got_ready, got_why = readiness({"status": status}, generation)
    assert got_ready is ready
    assert why in got_why
