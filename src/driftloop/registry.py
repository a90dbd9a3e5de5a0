"""The MLflow model registry, through aliases only.

Production is ``models:/NAME@champion``. A gated-but-kept version is the
``challenger``; the champion a promotion replaced is ``previous-champion``,
which is what a rollback restores. MLflow stages are deprecated and never used.

The ``*_model`` / ``*_version`` / ``register_from_run`` functions at the end
are the step functions KFP components call: strings in, JSON out.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from driftloop.lineage import (
    CARRIED_RUN_TAG_PREFIXES,
    TAG_BLUEPRINT,
    TAG_BLUEPRINT_NAME,
    TAG_METRIC_NAME,
    TAG_METRIC_VALUE,
    TAG_PREFIX,
    TAG_PROMOTED_AT,
    TAG_RESTORED_AT,
    TAG_ROLLED_BACK_AT,
    TAG_ROLLED_BACK_REASON,
)

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION)

READY_TIMEOUT_S = 300.0
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


class RegistryError(Exception):
    """A registry operation that cannot be done as asked."""


class ModelNotFoundError(RegistryError, LookupError):
    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        listing = ", ".join(known) if known else "none"
        super().__init__(f"no registered model named {name!r} (known: {listing})")


class VersionNotFoundError(RegistryError, LookupError):
    def __init__(self, name: str, version: str):
        super().__init__(f"model {name!r} has no version {version!r}")


class RollbackError(RegistryError):
    """Nothing to roll back to."""


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]
    run_id: str | None
    source: str
    status: str
    created: datetime

    def tag(self, key: str, default: str | None = None) -> str | None:
        """A ``driftloop.*`` tag by its short key (``"decision"``) or full key."""
        return self.tags.get(key if key.startswith(TAG_PREFIX) else TAG_PREFIX + key, default)

    def blueprint(self):  # noqa: ANN201 - a Blueprint; imported lazily (each pulls its ML stack)
        """The blueprint instance this version was trained as (from its tag, never its name)."""
        from driftloop.blueprints import get_blueprint

        spec = self.tags.get(TAG_BLUEPRINT) or self.tags.get(TAG_BLUEPRINT_NAME)
        if not spec:
            raise RegistryError(
                f"model {self.name!r} version {self.version} has no {TAG_BLUEPRINT} tag: "
                "it was not registered by a driftloop pipeline"
            )
        return get_blueprint(spec)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created"] = self.created.isoformat()
        return data


@dataclass(frozen=True)
class ModelSummary:
    name: str
    champion: str | None
    challenger: str | None
    previous_champion: str | None
    latest_version: str | None
    metric_name: str | None = None
    metric_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelDetails:
    name: str
    aliases: dict[str, str]
    versions: list[VersionInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": dict(self.aliases),
            "versions": [v.to_dict() for v in self.versions],
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _is(exc: MlflowException, code: int) -> bool:
    return exc.error_code == ErrorCode.Name(code)


def parse_timestamp(value: str | None) -> datetime | None:
    """A tag written by this module back to an aware datetime (None if absent/garbled)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ModelRegistry:
    """Versions, aliases and lineage tags of registered models."""

    def __init__(self, tracking_uri: str | None = None):
        if tracking_uri is None:
            from driftloop.settings import get_settings

            tracking_uri = get_settings().resolved_tracking_uri
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # --- lookups ------------------------------------------------------------
    def model_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            page = self.client.search_registered_models(max_results=100, page_token=token)
            names.extend(model.name for model in page)
            token = page.token
            if not token:
                return sorted(names)

    def _registered(self, name: str):
        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if _is(exc, RESOURCE_DOES_NOT_EXIST):
                raise ModelNotFoundError(name, self.model_names()) from None
            raise

    def exists(self, name: str) -> bool:
        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if _is(exc, RESOURCE_DOES_NOT_EXIST):
                return False
            raise
        return True

    def aliases(self, name: str) -> dict[str, str]:
        """alias -> version for one model."""
        return {alias: str(version) for alias, version in self._registered(name).aliases.items()}

    def get_version(self, name: str, version: str | int) -> VersionInfo:
        # get_model_version, not search_model_versions: only it fills in aliases
        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if _is(exc, RESOURCE_DOES_NOT_EXIST):
                if not self.exists(name):
                    raise ModelNotFoundError(name, self.model_names()) from None
                raise VersionNotFoundError(name, str(version)) from None
            raise
        return self._info(mv)

    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        self._check_alias(alias)
        version = self.aliases(name).get(alias)
        return self.get_version(name, version) if version is not None else None

    def model_uri(self, name: str, alias: str = CHAMPION) -> str:
        self._check_alias(alias)
        return f"models:/{name}@{alias}"

    def version_uri(self, name: str, version: str | int) -> str:
        return f"models:/{name}/{version}"

    def _versions(self, name: str) -> list[ModelVersion]:
        escaped = name.replace("'", "\\'")
        found: list[ModelVersion] = []
        token = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{escaped}'", max_results=1000, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                return sorted(found, key=lambda mv: int(mv.version))

    def _info(self, mv: ModelVersion, aliases: list[str] | None = None) -> VersionInfo:
        return VersionInfo(
            name=mv.name,
            version=str(mv.version),
            aliases=sorted(aliases if aliases is not None else (mv.aliases or [])),
            tags=dict(mv.tags or {}),
            run_id=mv.run_id,
            source=mv.source,
            status=mv.status,
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
        )

    def describe(self, name: str) -> ModelDetails:
        aliases = self.aliases(name)
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        versions = [
            self._info(mv, by_version.get(str(mv.version), [])) for mv in self._versions(name)
        ]
        return ModelDetails(name=name, aliases=aliases, versions=versions)

    def list_models(self) -> list[ModelSummary]:
        summaries = []
        for name in self.model_names():
            aliases = self.aliases(name)
            versions = self._versions(name)
            latest = str(versions[-1].version) if versions else None
            metric_name = metric_value = None
            shown = aliases.get(CHAMPION) or latest
            if shown is not None:
                tags = next(
                    (dict(mv.tags or {}) for mv in versions if str(mv.version) == shown), {}
                )
                metric_name = tags.get(TAG_METRIC_NAME)
                metric_value = _float_or_none(tags.get(TAG_METRIC_VALUE))
            summaries.append(
                ModelSummary(
                    name=name,
                    champion=aliases.get(CHAMPION),
                    challenger=aliases.get(CHALLENGER),
                    previous_champion=aliases.get(PREVIOUS_CHAMPION),
                    latest_version=latest,
                    metric_name=metric_name,
                    metric_value=metric_value,
                )
            )
        return summaries

    # --- writes ---------------------------------------------------------------
    def register(
        self,
        name: str,
        run_id: str,
        tags: Mapping[str, Any] | None = None,
        artifact_path: str = "model",
    ) -> str:
        """Register the model logged at ``artifact_path`` of ``run_id``; returns the version."""
        source, model_id = self._resolve_run_model(run_id, artifact_path)
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if not _is(exc, RESOURCE_ALREADY_EXISTS):
                raise
        with self._global_uri():
            mv = self.client.create_model_version(
                name,
                source,
                run_id=run_id,
                tags={key: str(value) for key, value in (tags or {}).items()},
                model_id=model_id,
                await_creation_for=0,
            )
        self._wait_ready(name, str(mv.version))
        return str(mv.version)

    def _resolve_run_model(self, run_id: str, artifact_path: str) -> tuple[str, str | None]:
        """Where the run's model files are.

        MLflow 3 stores ``log_model(name=...)`` output as a logged model outside
        the run's artifacts, so ``runs:/<id>/model`` must be mapped to
        ``models:/<model_id>``; models saved as plain run artifacts keep their
        run artifact location.
        """
        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if _is(exc, RESOURCE_DOES_NOT_EXIST):
                raise RegistryError(f"no MLflow run with id {run_id!r}") from None
            raise
        run_model_uri = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
        if self._has_mlmodel(run_model_uri):
            return run_model_uri, None
        candidates = []
        token = None
        while True:
            page = self.client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"name = '{artifact_path}'",
                page_token=token,
            )
            candidates.extend(model for model in page if model.source_run_id == run_id)
            token = page.token
            if not token:
                break
        if not candidates:
            raise RegistryError(f"run {run_id} has no model logged under {artifact_path!r}")
        newest = max(candidates, key=lambda model: model.creation_timestamp)
        return f"models:/{newest.model_id}", newest.model_id

    def _has_mlmodel(self, artifact_uri: str) -> bool:
        import mlflow.artifacts

        # list the run's own artifact store: client.list_artifacts("runs:/...") would
        # look logged models up through the process-global tracking URI
        try:
            listing = mlflow.artifacts.list_artifacts(
                artifact_uri=artifact_uri, tracking_uri=self.tracking_uri
            )
        except (MlflowException, OSError):
            return False
        return any(item.path.rsplit("/", 1)[-1] == "MLmodel" for item in listing)

    def _wait_ready(self, name: str, version: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            status = self.client.get_model_version(name, version).status
            if status == "READY":
                return
            if status == "FAILED_REGISTRATION":
                raise RegistryError(f"registration of {name} version {version} failed")
            if time.monotonic() >= deadline:
                raise RegistryError(
                    f"{name} version {version} not READY after {timeout_s:.0f}s (status {status})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def set_tags(self, name: str, version: str | int, tags: Mapping[str, Any]) -> None:
        self.get_version(name, version)  # clear error for a bad name/version
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, str(value))

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        self._check_alias(alias)
        self.get_version(name, version)
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._check_alias(alias)
        if alias in self.aliases(name):
            self.client.delete_registered_model_alias(name, alias)

    def mark_challenger(self, name: str, version: str | int) -> None:
        self.set_alias(name, CHALLENGER, version)

    def promote(self, name: str, version: str | int) -> str | None:
        """Make ``version`` the champion; returns the champion it replaced (or None).

        The replaced champion becomes ``previous-champion``, the rollback target.
        Promoting the current champion again changes nothing.
        """
        version = str(version)
        self.get_version(name, version)
        aliases = self.aliases(name)
        current = aliases.get(CHAMPION)
        if current == version:
            return None
        # previous-champion first: if we stop half way, the old champion still serves
        if current is not None:
            self.client.set_registered_model_alias(name, PREVIOUS_CHAMPION, current)
        self.client.set_registered_model_alias(name, CHAMPION, version)
        if aliases.get(CHALLENGER) == version:
            self.client.delete_registered_model_alias(name, CHALLENGER)
        self.client.set_model_version_tag(name, version, TAG_PROMOTED_AT, _now().isoformat())
        log.info("%s: version %s is champion (was %s)", name, version, current)
        return current

    def rollback(self, name: str, reason: str = "manual") -> str:
        """Restore ``previous-champion`` as champion; returns the restored version.

        The demoted version is tagged with when and why. ``previous-champion``
        is cleared, so a second rollback cannot bring the bad version back.
        """
        aliases = self.aliases(name)
        previous = aliases.get(PREVIOUS_CHAMPION)
        if previous is None:
            raise RollbackError(f"model {name!r} has no previous-champion to roll back to")
        demoted = aliases.get(CHAMPION)
        now = _now().isoformat()
        self.client.set_registered_model_alias(name, CHAMPION, previous)
        self.client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
        self.client.set_model_version_tag(name, previous, TAG_RESTORED_AT, now)
        self.client.set_model_version_tag(name, previous, TAG_PROMOTED_AT, now)
        if demoted is not None and demoted != previous:
            self.client.set_model_version_tag(name, demoted, TAG_ROLLED_BACK_AT, now)
            self.client.set_model_version_tag(name, demoted, TAG_ROLLED_BACK_REASON, reason)
        log.info("%s: rolled back from %s to %s (%s)", name, demoted, previous, reason)
        return previous

    def promoted_at(self, name: str) -> datetime | None:
        champion = self.version_by_alias(name, CHAMPION)
        return parse_timestamp(champion.tags.get(TAG_PROMOTED_AT)) if champion else None

    # --- models ---------------------------------------------------------------
    def load_sklearn(self, name: str, version: str | int):
        """Load one version's fitted model from *this* registry (``model_logging.load_native``)."""
        from driftloop.training.model_logging import load_native

        self.get_version(name, version)
        return load_native(self.version_uri(name, version), self.tracking_uri)

    def _global_uri(self):
        return scoped_tracking_uri(self.tracking_uri)

    @staticmethod
    def _check_alias(alias: str) -> None:
        if alias not in ALIASES:
            raise ValueError(f"alias must be one of {', '.join(ALIASES)}; got {alias!r}")


@contextmanager
def scoped_tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's process-global tracking URI at ``uri`` for a moment.

    Some MLflow 3 code paths (resolving ``models:/<model_id>`` while creating a
    version, loading a model) build a fresh ``MlflowClient()`` on the global URI
    instead of using the client they were called through. ``set_tracking_uri``
    also rewrites (or deletes) ``MLFLOW_TRACKING_URI`` in ``os.environ``, so the
    variable is put back exactly as it was: subprocesses must still inherit it.
    """
    from mlflow.tracking._tracking_service import utils as tracking

    saved_env = os.environ.get(TRACKING_URI_ENV)
    if tracking.get_tracking_uri() == uri:
        yield
        return
    saved_global = tracking._tracking_uri
    try:
        tracking.set_tracking_uri(uri)
        yield
    finally:
        tracking.set_tracking_uri(saved_global)
        if saved_env is None:
            os.environ.pop(TRACKING_URI_ENV, None)
        else:
            os.environ[TRACKING_URI_ENV] = saved_env


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# --- step functions for KFP components ----------------------------------------
def register_from_run(
    name: str,
    run_id: str,
    tags_json: str = "{}",
    artifact_path: str = "model",
    tracking_uri: str | None = None,
) -> str:
    """Register a run's model with the given tags; JSON ``{name, version, model_uri}``."""
    try:
        tags = json.loads(tags_json or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"tags_json is not valid JSON: {exc}") from None
    if not isinstance(tags, dict):
        raise ValueError("tags_json must be a JSON object of tag -> value")
    registry = ModelRegistry(tracking_uri)
    # how the run searched and validated travels with the version (the given tags win)
    run_tags = registry.client.get_run(run_id).data.tags
    carried = {k: v for k, v in run_tags.items() if k.startswith(CARRIED_RUN_TAG_PREFIXES)}
    version = registry.register(name, run_id, carried | tags, artifact_path=artifact_path)
    return json.dumps(
        {"name": name, "version": version, "model_uri": registry.version_uri(name, version)}
    )


def promote_version(name: str, version: str, tracking_uri: str | None = None) -> str:
    """Promote one version; JSON ``{name, version, previous_champion, model_uri}``."""
    registry = ModelRegistry(tracking_uri)
    replaced = registry.promote(name, version)
    return json.dumps(
        {
            "name": name,
            "version": str(version),
            "previous_champion": replaced,
            "model_uri": registry.model_uri(name),
        }
    )


def rollback_model(name: str, reason: str = "manual", tracking_uri: str | None = None) -> str:
    """Roll back to previous-champion; JSON ``{name, champion, demoted, reason}``."""
    registry = ModelRegistry(tracking_uri)
    demoted = registry.aliases(name).get(CHAMPION)
    restored = registry.rollback(name, reason)
    return json.dumps({"name": name, "champion": restored, "demoted": demoted, "reason": reason})
