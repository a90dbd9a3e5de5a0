"""Submitting compiled pipelines to a Kubeflow Pipelines API (``kfp.Client``).

The one place driftloop talks to KFP: ``driftloop pipelines upload|run`` and the
trigger's KFP launcher both come through here. The host is
``KF_PIPELINES_ENDPOINT`` (``settings.resolved_kfp_host``); kfp.Client finds
credentials itself (in-cluster service-account token, or the environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

PIPELINES_PACKAGE = "pipelines"  # ships the compiled IR YAML as package data


class PipelinesClientError(RuntimeError):
    """What a user must fix before a submission can work (no host, no package)."""


def require_host(host: str | None) -> str:
    if not host:
        raise PipelinesClientError(
            "no Kubeflow Pipelines endpoint configured: set KF_PIPELINES_ENDPOINT "
            "(or DRIFTLOOP_KFP_HOST), e.g. http://127.0.0.1:8888 after a port-forward"
        )
    return host


def default_compiled_dir() -> Path:
    """``pipelines/compiled``, which ships as package data of the ``pipelines`` package.

    Found as a package resource, not imported: this module (and the trigger that
    uses it) sits below the pipelines.
    """
    from importlib import resources

    return Path(str(resources.files(PIPELINES_PACKAGE))).resolve() / "compiled"


def compiled_package(name: str, compiled_dir: Path | None = None) -> Path:
    """The compiled IR YAML of pipeline ``name`` ("training", "retraining")."""
    directory = compiled_dir or default_compiled_dir()
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        raise PipelinesClientError(
            f"no compiled pipeline {name!r} in {directory} (known: {', '.join(known) or 'none'}); "
            "run `make compile`"
        )
    return path


def client(host: str | None):
    import kfp

    return kfp.Client(host=require_host(host))


def submit_run(
    package_path: str | Path,
    arguments: Mapping[str, Any],
    run_name: str,
    experiment: str,
    host: str | None,
) -> str:
    """Create a run of a compiled pipeline; returns the KFP run id.

    Caching is what each task says (``enable_caching=None``): the steps that
    register versions, move aliases or read live feedback are compiled with
    caching off, so none of them is ever replayed; the pure ones (validate,
    split) may be.
    """
    package = Path(package_path)
    if not package.is_file():
        raise PipelinesClientError(f"pipeline package not found: {package}")
    run = client(host).create_run_from_pipeline_package(
        str(package),
        arguments=dict(arguments),
        run_name=run_name,
        experiment_name=experiment,
        enable_caching=None,
    )
    return run.run_id


def upload_pipeline(
    package_path: str | Path,
    pipeline_name: str,
    host: str | None,
    version_name: str | None = None,
) -> dict[str, str]:
    """Upload a compiled pipeline, or a new version of it if the name exists already."""
    package = Path(package_path)
    if not package.is_file():
        raise PipelinesClientError(f"pipeline package not found: {package}")
    kfp_client = client(host)
    existing = kfp_client.get_pipeline_id(pipeline_name)
    if existing is None:
        pipeline = kfp_client.upload_pipeline(str(package), pipeline_name=pipeline_name)
        return {"pipeline_id": pipeline.pipeline_id, "version_id": "", "created": "pipeline"}
    version = kfp_client.upload_pipeline_version(
        str(package),
        pipeline_version_name=version_name or _version_name(package),
        pipeline_id=existing,
    )
    return {
        "pipeline_id": existing,
        "version_id": version.pipeline_version_id,
        "created": "version",
    }


def _version_name(package: Path) -> str:
    """A version name that changes exactly when the compiled package does."""
    import hashlib

    digest = hashlib.sha256(package.read_bytes()).hexdigest()[:12]
    return f"{package.stem}-{digest}"
