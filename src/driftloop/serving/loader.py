"""Find and load the model version to serve (MLflow), apart from any transport.

An alias URI (``models:/NAME@champion``) is resolved to a concrete version
first and that version is loaded, so the version we report is exactly the one
whose weights we hold even if the alias moves while we load.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.registry import scoped_tracking_uri

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
        # load_model("models:/...") resolves through MLflow's global URI only
        with scoped_tracking_uri(tracking_uri) if tracking_uri else nullcontext():
            pipeline = mlflow.sklearn.load_model(concrete)
    except Exception as exc:  # MlflowException, OSError, unpickling errors
        raise ModelLoadError(f"cannot load {concrete}: {exc}") from exc
    if not hasattr(pipeline, "predict_proba") or not hasattr(pipeline, "classes_"):
        raise ModelLoadError(f"{concrete} is not a classifier with predict_proba and classes_")
    labels = tuple(str(label) for label in np.asarray(pipeline.classes_).tolist())
    return LoadedModel(pipeline=pipeline, version=version, uri=concrete, labels=labels)
