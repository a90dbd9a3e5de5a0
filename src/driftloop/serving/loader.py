"""Find and load the model version to serve (MLflow), apart from any transport.

An alias URI (``models:/NAME@champion``) is resolved to a concrete version
first and that version is loaded, so the version we report is exactly the one
whose weights we hold even if the alias moves while we load.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from driftloop.blueprints import Blueprint
from driftloop.blueprints.codec import Codec, Limits
from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_BLUEPRINT, TAG_PREFIX

log = logging.getLogger(__name__)

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")


class ModelLoadError(RuntimeError):
    """The model URI does not resolve or the artifact cannot be loaded."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model, the blueprint it was trained as, its codec, and where it came from."""

    model: Any
    blueprint: Blueprint
    codec: Codec
    version: str
    uri: str
    # what the version says of itself (``version_metadata``): answered as model metadata
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


def model_uri_for(name: str, alias: str = "champion", model_uri: str | None = None) -> str:
    return model_uri or f"models:/{name}@{alias}"


def is_alias_uri(uri: str) -> bool:
    return _ALIAS_URI.match(uri) is not None


def _client(tracking_uri: str | None):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve(uri: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """``uri`` → (concrete URI to load, version string).

    Alias URIs become ``models:/NAME/<version>``; run URIs report the run id
    (prefix) as version; anything else is loaded as given, version "0".
    """
    alias = _ALIAS_URI.match(uri)
    if alias:
        try:
            version = _client(tracking_uri).get_model_version_by_alias(
                alias["name"], alias["alias"]
            )
        except Exception as exc:  # MlflowException: unknown model or alias
            raise ModelLoadError(f"cannot resolve {uri}: {exc}") from exc
        return f"models:/{alias['name']}/{version.version}", str(version.version)
    fixed = _VERSION_URI.match(uri)
    if fixed:
        return uri, fixed["version"]
    run = _RUN_URI.match(uri)
    if run:
        return uri, run["run_id"][:12]
    return uri, "0"


# The reload poll asks one short question per round. MLflow's client retries a failed
# request with exponential backoff (minutes, by default): a poll caught in it during a
# registry outage sleeps on long after the registry is back, and picks up a moved alias
# only then. The next round is never more than one interval away, so the poll itself
# need not retry.
POLL_TIMEOUT_S = 5.0
_ALIAS_ENDPOINT = "/api/2.0/mlflow/registered-models/alias"


def current_version(
    uri: str, tracking_uri: str | None = None, timeout_s: float = POLL_TIMEOUT_S
) -> str:
    """The version ``uri`` points at now -- for the reload poll: against an HTTP registry
    one request of at most ``timeout_s``, never retried (:class:`ModelLoadError` if it fails).

    The no-retry, short-timeout settings are passed to that one request
    (``mlflow.utils.rest_utils.http_request``'s ``max_retries`` and ``timeout``), not put
    in the environment: ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``/``_TIMEOUT`` are process-global,
    and this poll runs on a background thread while other threads of the process (a model
    load, a feedback's blueprint lookup) talk to MLflow with its usual retries.
    """
    alias = _ALIAS_URI.match(uri)
    registry = _registry_uri(tracking_uri) if alias else None
    if alias and registry and registry.split(":", 1)[0] in ("http", "https"):
        return _alias_version_once(registry, alias["name"], alias["alias"], timeout_s)
    return resolve(uri, tracking_uri)[1]


def _registry_uri(tracking_uri: str | None) -> str | None:
    if tracking_uri:
        return tracking_uri
    import mlflow

    return mlflow.get_registry_uri()


def _alias_version_once(registry: str, name: str, alias: str, timeout_s: float) -> str:
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    where = f"models:/{name}@{alias}"
    try:
        response = http_request(
            get_default_host_creds(registry),
            _ALIAS_ENDPOINT,
            "GET",
            params={"name": name, "alias": alias},
            max_retries=0,
            backoff_factor=0,
            timeout=timeout_s,
            raise_on_status=False,
        )
        verify_rest_response(response, _ALIAS_ENDPOINT)
        return str(response.json()["model_version"]["version"])
    except Exception as exc:  # MlflowException (unreachable, unknown alias), bad JSON
        raise ModelLoadError(f"cannot resolve {where}: {exc}") from exc


def blueprint_of(concrete: str, tracking_uri: str | None = None) -> Blueprint:
    """The blueprint instance tagged on a model version (or on the run that logged it)."""
    from driftloop.registry import ModelRegistry, RegistryError

    fixed = _VERSION_URI.match(concrete)
    run = _RUN_URI.match(concrete)
    try:
        if fixed:
            return (
                ModelRegistry(tracking_uri).get_version(fixed["name"], fixed["version"]).blueprint()
            )
        if run:
            from driftloop.blueprints import get_blueprint

            tags = _client(tracking_uri).get_run(run["run_id"]).data.tags
            if TAG_BLUEPRINT in tags:
                return get_blueprint(tags[TAG_BLUEPRINT])
    except (RegistryError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {concrete}: {exc}") from exc
    raise ModelLoadError(
        f"cannot tell the blueprint of {concrete}: serve a registered version "
        "(models:/NAME/VERSION or models:/NAME@ALIAS) or a driftloop training run"
    )


TEST_METRIC_PREFIX = "test_"  # ``training.evaluate.TEST_PREFIX``: the test split's scores
TUNED_PARAM_PREFIX = "tuned."  # the search's best hyperparameters (``training.candidates``)


def version_metadata(concrete: str, version: str, blueprint: Blueprint, tracking_uri=None) -> dict:
    """The served version described for callers (the v2 model metadata's ``parameters``).

    ``version``; ``blueprint`` and ``hyperparameters`` (its options -- ``--param`` values
    included -- as the version's blueprint tag records them); ``candidate`` the search chose;
    ``tuned`` (the search's best hyperparameters); ``test_metrics`` (the training run's
    ``test_*`` scores); ``registered_at``; ``tags`` (the version's ``driftloop.*`` tags: the
    gate's decision, a fallback's reason, lineage). A run that cannot be read leaves the run's
    parts empty: metadata never stops a version from serving.
    """
    from driftloop.registry import ModelRegistry

    info: dict[str, Any] = {
        "version": version,
        "blueprint": blueprint.name,
        "hyperparameters": dict(blueprint.spec.options),
        "candidate": None,
        "tuned": {},
        "test_metrics": {},
        "registered_at": None,
        "tags": {},
    }
    fixed, run = _VERSION_URI.match(concrete), _RUN_URI.match(concrete)
    run_id = run["run_id"] if run else None
    try:
        if fixed:
            registered = ModelRegistry(tracking_uri).get_version(fixed["name"], fixed["version"])
            run_id = registered.run_id
            info["registered_at"] = registered.created.isoformat()
            info["tags"] = {k: v for k, v in registered.tags.items() if k.startswith(TAG_PREFIX)}
        if run_id:
            data = _client(tracking_uri).get_run(run_id).data
            info["candidate"] = data.tags.get(TAG_BEST_CANDIDATE)
            info["test_metrics"] = {
                name.removeprefix(TEST_METRIC_PREFIX): value
                for name, value in sorted(data.metrics.items())
                if name.startswith(TEST_METRIC_PREFIX)
            }
            info["tuned"] = {
                name.removeprefix(TUNED_PARAM_PREFIX): value
                for name, value in sorted(data.params.items())
                if name.startswith(TUNED_PARAM_PREFIX)
            }
            if not fixed:
                info["tags"] = {k: v for k, v in data.tags.items() if k.startswith(TAG_PREFIX)}
    except Exception as exc:  # MlflowException, RegistryError: a deleted run, an outage
        log.warning("metadata of %s incomplete: %s", concrete, exc)
    return info


def load(uri: str, tracking_uri: str | None = None, limits: Limits | None = None) -> LoadedModel:
    """Resolve ``uri``, load the fitted model (``model_logging.load_native``) and its codec."""
    concrete, version = resolve(uri, tracking_uri)
    from driftloop.training.model_logging import load_native

    blueprint = blueprint_of(concrete, tracking_uri)
    try:
        model = load_native(concrete, tracking_uri)
    except Exception as exc:  # MlflowException, OSError, unpickling errors
        raise ModelLoadError(f"cannot load {concrete}: {exc}") from exc
    try:
        codec = blueprint.codec(model, limits or Limits())
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{concrete} is not a {blueprint.spec} model: {exc}") from exc
    return LoadedModel(
        model=model,
        blueprint=blueprint,
        codec=codec,
        version=version,
        uri=concrete,
        metadata=version_metadata(concrete, version, blueprint, tracking_uri),
    )
