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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftloop.blueprints.spec import BlueprintSpec

TAG_PREFIX = "driftloop."
# the blueprint instance (``BlueprintSpec`` text) and MLflow flavour a version was trained as
TAG_BLUEPRINT = f"{TAG_PREFIX}blueprint"
TAG_BLUEPRINT_NAME = f"{TAG_PREFIX}blueprint.name"
TAG_FLAVOUR = f"{TAG_PREFIX}flavour"
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


def tag_key(name: str) -> str:
    """The full tag key for ``name`` ("metric.name" -> "driftloop.metric.name")."""
    return name if name.startswith(TAG_PREFIX) else TAG_PREFIX + name


# --- the tag keys driftloop writes and reads: defined here and nowhere else ------
# what a model was trained from (training runs and registered versions)
TAG_SEED = tag_key("seed")
TAG_CANDIDATE = tag_key("candidate")
TAG_HPO = tag_key("hpo")
TAG_BEST_CANDIDATE = tag_key("best_candidate")
TAG_PRIMARY_METRIC = tag_key("primary_metric")
TAG_DATASET_FINGERPRINT = tag_key("dataset_fingerprint")
# where the training rows came from: a retraining run re-reads the same source
TAG_DATASET = tag_key("data.dataset")
TAG_DATA_SOURCE = tag_key("data.source")
TAG_LABEL_MAPPING = tag_key("data.label_mapping")
TAG_GIT_COMMIT = tag_key("git_commit")
TAG_SPLIT_SCHEME = tag_key("split.scheme")
TAG_METRIC_NAME = tag_key("metric.name")
TAG_METRIC_VALUE = tag_key("metric.value")
TAG_METRIC_SPLIT = tag_key("metric.split")
# how the search ran (training runs; carried onto the registered version, and a
# retraining reuses the champion's search settings)
TAG_SEARCH = tag_key("search")
TAG_SEARCH_SAMPLER = tag_key("search.sampler")
TAG_SEARCH_PRUNER = tag_key("search.pruner")
TAG_SEARCH_PRESET = tag_key("search.preset")
TAG_OPTUNA_STORAGE = tag_key("search.optuna_storage")  # password masked
TAG_OPTUNA_STUDIES = tag_key("search.optuna_studies")
TAG_VALIDATION = tag_key("validation.strategy")
TAG_VALIDATION_REASON = tag_key("validation.reason")
TAG_VALIDATION_FOLDS = tag_key("validation.folds")
# one Optuna trial's nested run
TAG_TRIAL_NUMBER = tag_key("trial.number")
TAG_TRIAL_STATE = tag_key("trial.state")
# the evaluate step served a blueprint's fallback (``Blueprint.fallback``) instead of the
# chosen candidate: why (e.g. "no candidate beat persistence ..."), and what it replaced
TAG_FALLBACK = tag_key("fallback.reason")
TAG_FALLBACK_REPLACED = tag_key("fallback.replaced")
# training-run tags the register step copies onto the version (prefixes)
CARRIED_RUN_TAG_PREFIXES = (TAG_SEARCH, tag_key("validation."), tag_key("fallback."))


def split_fingerprint_tag(split: str) -> str:
    """``driftloop.split.<split>_fingerprint``: the fingerprint of one split's rows."""
    return tag_key(f"split.{split}_fingerprint")


TAG_TRAIN_FINGERPRINT = split_fingerprint_tag("train")
TAG_TEST_FINGERPRINT = split_fingerprint_tag("test")


def runtime_tag(package: str) -> str:
    """``driftloop.runtime.<package>``: the package's version in the training runtime."""
    return tag_key(f"runtime.{package}")


# the gate's decision on a challenger
TAG_DECISION = tag_key("decision")
TAG_DECISION_REASON = tag_key("decision.reason")
TAG_DECISION_METRIC = tag_key("decision.metric")
TAG_DECISION_REQUIRED = tag_key("decision.required")
TAG_DECISION_AT = tag_key("decision.at")
TAG_DECISION_TEST_ROWS = tag_key("decision.test_rows")
TAG_DECISION_EXCLUDED_ROWS = tag_key("decision.excluded_rows")
TAG_CHALLENGER_SCORE = tag_key("challenger_score")
TAG_CHAMPION_SCORE = tag_key("champion_score")
TAG_CHAMPION_VERSION = tag_key("champion_version")
TAG_RESCORED = tag_key("rescored")
# promotion and rollback in the registry
TAG_PROMOTED_AT = tag_key("promoted_at")
TAG_ROLLED_BACK_AT = tag_key("rolled_back_at")
TAG_ROLLED_BACK_REASON = tag_key("rolled_back_reason")
TAG_RESTORED_AT = tag_key("restored_at")
# where the drift monitor's reference (fitted on the champion's data) is stored
TAG_DRIFT_REFERENCE = tag_key("drift_reference")
# a version brought by ``driftloop import``: the model file's name and sha256
TAG_IMPORTED_FROM = tag_key("imported_from")


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
    blueprint: BlueprintSpec | None = None,
    flavour: str | None = None,
) -> dict[str, str]:
    """The lineage tags every registered version carries."""
    tags = {
        TAG_DATASET_FINGERPRINT: str(dataset_fingerprint),
        TAG_GIT_COMMIT: git_commit(),
        TAG_METRIC_NAME: str(metric_name),
        TAG_METRIC_VALUE: format_value(metric_value),
        TAG_METRIC_SPLIT: str(metric_split),
    }
    for split, value in split_fingerprints.items():
        tags[split_fingerprint_tag(split)] = str(value)
    for package, version in runtime_versions().items():
        tags[runtime_tag(package)] = version
    if blueprint is not None:
        tags |= blueprint_tags(blueprint, flavour)
    return tags


def data_tags(dataset: str, source: str = "", label_mapping: str = "") -> dict[str, str]:
    tags = {TAG_DATASET: dataset, TAG_DATA_SOURCE: source, TAG_LABEL_MAPPING: label_mapping}
    return {key: value for key, value in tags.items() if value}


def blueprint_tags(blueprint: BlueprintSpec, flavour: str | None = None) -> dict[str, str]:
    tags = {TAG_BLUEPRINT: blueprint.to_text(), TAG_BLUEPRINT_NAME: blueprint.name}
    if flavour:
        tags[TAG_FLAVOUR] = flavour
    return tags
