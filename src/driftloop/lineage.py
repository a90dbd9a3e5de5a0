"""Where a model came from: the code commit, the runtime, the data it saw.

Every registered version carries these as ``driftloop.*`` tags, so a version
can be traced back to its data split and reproduced with the same packages.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

TAG_PREFIX = "driftloop."
UNKNOWN_COMMIT = "unknown"

# distribution names to record; a tuple lists alternatives that install the same module
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "driftloop": ("driftloop",),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "torch": ("torch",),
    "kserve": ("kserve",),
    "kfp": ("kfp",),
}


def git_commit() -> str:
    """The commit the running code was built from.

    Images carry no ``.git``, so the build passes ``DRIFTLOOP_GIT_COMMIT``;
    a source checkout answers ``git rev-parse HEAD``; anything else is
    ``"unknown"`` rather than a guess.
    """
    from_env = os.environ.get("DRIFTLOOP_GIT_COMMIT", "").strip()
    if from_env:
        return from_env
    # ask the checkout this module lives in, not whatever directory we run from
    source_dir = Path(__file__).resolve().parent
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=source_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN_COMMIT
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else UNKNOWN_COMMIT


def runtime_versions() -> dict[str, str]:
    """Installed versions of Python and the packages a model depends on.

    Packages that are not installed are left out rather than recorded as a
    version that never existed.
    """
    versions = {"python": platform.python_version()}
    for label, distributions in RUNTIME_PACKAGES.items():
        for distribution in distributions:
            try:
                versions[label] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def format_value(value: float) -> str:
    """A metric as a tag string that parses back to the same float."""
    return repr(float(value))


def version_tags(
    dataset_fingerprint: str,
    split_fingerprints: Mapping[str, str],
    metric_name: str,
    metric_value: float,
    metric_split: str = "test",
) -> dict[str, str]:
    """The lineage tags every registered version carries."""
    tags = {
        f"{TAG_PREFIX}dataset_fingerprint": str(dataset_fingerprint),
        f"{TAG_PREFIX}git_commit": git_commit(),
        f"{TAG_PREFIX}metric.name": str(metric_name),
        f"{TAG_PREFIX}metric.value": format_value(metric_value),
        f"{TAG_PREFIX}metric.split": str(metric_split),
    }
    for split, value in split_fingerprints.items():
        tags[f"{TAG_PREFIX}split.{split}_fingerprint"] = str(value)
    for package, version in runtime_versions().items():
        tags[f"{TAG_PREFIX}runtime.{package}"] = version
    return tags
