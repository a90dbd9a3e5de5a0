"""Find and load the model version to serve (MLflow), apart from any transport.

An alias URI (``models:/NAME@champion``) is resolved to a concrete version
first and that version is loaded, so the version we report is exactly the one
whose weights we hold even if the alias moves while we load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")


class ModelLoadError(RuntimeError):
    """The model URI does not resolve or the artifact cannot be loaded."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded classifier and where it came from."""

    pipeline: Any
    version: str
    uri: str
    labels: tuple[str, ...]


@contextmanager
def _global_tracking_uri(uri: str | None) -> Iterator[None]:
    """Point MLflow's process-global tracking URI at ``uri`` while loading.

    ``load_model("models:/...")`` resolves through the global URI only; the old
    value (and ``MLFLOW_TRACKING_URI``, which ``set_tracking_uri`` rewrites) is
    restored so a caller's process is left as it was.
    """
    from mlflow.tracking._tracking_service import utils as tracking

    if not uri or tracking.get_tracking_uri() == uri:
        yield
        return
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    saved_global = tracking._tracking_uri
    try:
        tracking.set_tracking_uri(uri)
        yield
    finally:
        tracking.set_tracking_uri(saved_global)
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


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


def current_version(uri: str, tracking_uri: str | None = None) -> str:
    return resolve(uri, tracking_uri)[1]


def load(uri: str, tracking_uri: str | None = None) -> LoadedModel:
    """Resolve and load ``uri`` with the ``mlflow.sklearn`` flavour."""
    concrete, version = resolve(uri, tracking_uri)
    import mlflow.sklearn

    try:
        with _global_tracking_uri(tracking_uri):
            pipeline = mlflow.sklearn.load_model(concrete)
    except Exception as exc:  # MlflowException, OSError, unpickling errors
        raise ModelLoadError(f"cannot load {concrete}: {exc}") from exc
    if not hasattr(pipeline, "predict_proba") or not hasattr(pipeline, "classes_"):
        raise ModelLoadError(f"{concrete} is not a classifier with predict_proba and classes_")
    labels = tuple(str(label) for label in np.asarray(pipeline.classes_).tolist())
    return LoadedModel(pipeline=pipeline, version=version, uri=concrete, labels=labels)
