"""Rollout on Kubernetes: patch the model's KServe InferenceService.

The InferenceService (``serving.kserve.io/v1beta1``, same name as the model)
is created by the manifests or the chart; a rollout only points it at another
registry version. It sets ``DRIFTLOOP_MODEL_URI=models:/NAME/VERSION`` on the
predictor container and a fresh ``driftloop.io/revision`` annotation (on the
InferenceService and on the predictor pods, so re-deploying the same URI still
rolls the pods), with a JSON merge patch guarded by ``resourceVersion``. Then
it polls ``status`` until the controller has observed the new generation and
reports ``Ready=True``, or the timeout passes.

Credentials follow the ecosystem: ``KUBECONFIG`` (or ``~/.kube/config``), or
the in-cluster service account when running in a pod.
"""

from __future__ import annotations

import copy
import os
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from driftloop.deploy.base import (
    READY,
    TIMEOUT,
    Deployer,
    DeployError,
    RolloutResult,
    registry_model_uri,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from driftloop.settings import Settings

GROUP = "serving.kserve.io"
API_VERSION = "v1beta1"
PLURAL = "inferenceservices"
MODEL_URI_ENV = "DRIFTLOOP_MODEL_URI"
REVISION_ANNOTATION = "driftloop.io/revision"
VERSION_ANNOTATION = "driftloop.io/model-version"
MODEL_URI_ANNOTATION = "driftloop.io/model-uri"
PREDICTOR_CONTAINER = "kserve-container"
CONFLICT_RETRIES = 3


def load_api_client() -> ApiClient:
    """An API client from the in-cluster service account or KUBECONFIG."""
    from kubernetes import config

    kubeconfig = os.environ.get("KUBECONFIG")
    try:
        if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            from kubernetes.client import ApiClient

            return ApiClient()
        # Passed explicitly: the client reads KUBECONFIG only once, at import.
        return config.new_client_from_config(config_file=kubeconfig or None)
    except (config.ConfigException, OSError) as exc:
        where = f"KUBECONFIG={kubeconfig}" if kubeconfig else "~/.kube/config"
        raise DeployError(f"no usable Kubernetes credentials ({where}): {exc}") from exc


def with_model_uri(env: list[dict[str, Any]] | None, model_uri: str) -> list[dict[str, Any]]:
    """``env`` with DRIFTLOOP_MODEL_URI set to ``model_uri`` (other entries kept in order)."""
    updated = [dict(item) for item in env or [] if item.get("name") != MODEL_URI_ENV]
    updated.append({"name": MODEL_URI_ENV, "value": model_uri})
    return updated


def rollout_patch(
    inference_service: dict[str, Any], model_uri: str, version: str, revision: str
) -> dict[str, Any]:
    """The JSON merge patch that makes ``inference_service`` serve ``model_uri``.

    Merge patches replace lists whole, so the env list (or the containers list)
    is sent complete, built from the object just read; ``resourceVersion``
    makes the API server refuse the patch if someone changed it in between.
    """
    metadata = inference_service.get("metadata") or {}
    predictor = copy.deepcopy((inference_service.get("spec") or {}).get("predictor") or {})
    predictor_patch: dict[str, Any] = {"annotations": {REVISION_ANNOTATION: revision}}
    if "model" in predictor:
        model = predictor["model"] or {}
        predictor_patch["model"] = {"env": with_model_uri(model.get("env"), model_uri)}
    elif predictor.get("containers"):
        containers = predictor["containers"]
        target = next(
            (c for c in containers if c.get("name") == PREDICTOR_CONTAINER), containers[0]
        )
        target["env"] = with_model_uri(target.get("env"), model_uri)
        predictor_patch["containers"] = containers
    else:
        name = metadata.get("name", "?")
        raise DeployError(
            f"InferenceService {name} has neither spec.predictor.model nor "
            "spec.predictor.containers; cannot set the model URI"
        )
    patch_metadata: dict[str, Any] = {
        "annotations": {
            REVISION_ANNOTATION: revision,
            VERSION_ANNOTATION: str(version),
            MODEL_URI_ANNOTATION: model_uri,
        }
    }
    if metadata.get("resourceVersion"):
        patch_metadata["resourceVersion"] = metadata["resourceVersion"]
    return {"metadata": patch_metadata, "spec": {"predictor": predictor_patch}}


def readiness(inference_service: dict[str, Any], generation: int | None) -> tuple[bool, str]:
    """(ready, why) for an InferenceService after a patch that produced ``generation``."""
    status = inference_service.get("status") or {}
    ready_condition = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
    )
    if ready_condition is None:
        state, is_ready = "no Ready condition yet", False
    else:
        is_ready = str(ready_condition.get("status")) == "True"
        state = " ".join(
            part
            for part in (
                f"Ready={ready_condition.get('status')}",
                ready_condition.get("reason") or "",
                ready_condition.get("message") or "",
            )
            if part
        )
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and int(observed) < int(generation):
        # A Ready=True here still describes the previous spec.
        return False, f"controller has observed generation {observed}, not {generation} ({state})"
    return is_ready, state


def new_revision(version: str) -> str:
    return f"{version}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"


class KubernetesDeployer(Deployer):
    target = "kubernetes"

    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        *,
        timeout_s: float = 300.0,
        poll_interval_s: float = 2.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        from kubernetes.client import CustomObjectsApi

        self.api = CustomObjectsApi(api_client)
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.request_timeout_s = request_timeout_s

    @classmethod
    def from_settings(cls, settings: Settings, **options) -> KubernetesDeployer:
        api_client = options.pop("api_client", None) or load_api_client()
        options.setdefault("namespace", settings.namespace)
        return cls(api_client, **options)

    # --- API calls, with errors a user can act on -------------------------
    def _call(self, what: str, name: str, func, *args, **kwargs) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return func(*args, _request_timeout=self.request_timeout_s, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise DeployError(
                    f"InferenceService {self.namespace}/{name} not found "
                    "(apply manifests/ or install the chart first)"
                ) from exc
            if exc.status in (401, 403):
                raise DeployError(
                    f"not allowed to {what} InferenceService {self.namespace}/{name}: "
                    f"HTTP {exc.status} {exc.reason}"
                ) from exc
            if exc.status == 409:
                raise  # a write conflict: the caller re-reads and retries
            raise DeployError(
                f"{what} InferenceService {self.namespace}/{name} failed: "
                f"HTTP {exc.status} {exc.reason}"
            ) from exc
        except HTTPError as exc:
            host = self.api.api_client.configuration.host
            raise DeployError(f"cannot reach the Kubernetes API at {host}: {exc}") from exc

    def get(self, name: str) -> dict[str, Any]:
        return self._call(
            "get",
            name,
            self.api.get_namespaced_custom_object,
            GROUP,
            API_VERSION,
            self.namespace,
            PLURAL,
            name,
        )

    def patch(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            "patch",
            name,
            self.api.patch_namespaced_custom_object,
            GROUP,
            API_VERSION,
            self.namespace,
            PLURAL,
            name,
            body,
        )

    # --- the rollout --------------------------------------------------------
    def roll_out(
        self, model_name: str, version: str, model_uri: str | None = None
    ) -> RolloutResult:
        from kubernetes.client.exceptions import ApiException

        uri = model_uri or registry_model_uri(model_name, version)
        started = time.monotonic()
        revision = new_revision(str(version))
        for attempt in range(1, CONFLICT_RETRIES + 1):
            current = self.get(model_name)
            try:
                patched = self.patch(
                    model_name, rollout_patch(current, uri, str(version), revision)
                )
                break
            except ApiException as exc:
                # 409: someone changed it between our read and our patch; re-read.
                if exc.status != 409 or attempt == CONFLICT_RETRIES:
                    raise DeployError(
                        f"patching InferenceService {self.namespace}/{model_name} failed: "
                        f"HTTP {exc.status} {exc.reason}"
                    ) from exc
        generation = (patched.get("metadata") or {}).get("generation")

        deadline = started + self.timeout_s
        why = "not polled yet"
        latest = patched
        while True:
            ready, why = readiness(latest, generation)
            if ready:
                return self._result(model_name, version, uri, revision, started, latest, READY, why)
            if time.monotonic() >= deadline:
                message = f"not Ready within {self.timeout_s:g}s: {why}"
                return self._result(
                    model_name, version, uri, revision, started, latest, TIMEOUT, message
                )
            time.sleep(self.poll_interval_s)
            latest = self.get(model_name)

    def _result(self, model_name, version, uri, revision, started, latest, status, message):
        return RolloutResult(
            model_name=model_name,
            version=str(version),
            model_uri=uri,
            target=self.target,
            status=status,
            ready=status == READY,
            elapsed_s=round(time.monotonic() - started, 3),
            message=f"InferenceService {self.namespace}/{model_name}: {message}",
            url=(latest.get("status") or {}).get("url"),
            revision=revision,
        )
