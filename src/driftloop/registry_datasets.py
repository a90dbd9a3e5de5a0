"""The datasets MLflow has seen: what each training run logged with ``mlflow.log_input``.

A dataset is what MLflow identifies one by: its name and its digest (the same
rows under two names are two datasets, as MLflow has them). For each, the
catalogue gathers the source, schema and profile MLflow recorded, every run
that logged it (with the context: training, validation, evaluation) and the
registered model versions created from those runs. Read through MLflow's
public client only: ``search_experiments`` → ``search_runs`` (``run.inputs.
dataset_inputs``) and ``search_model_versions``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

CONTEXT_TAG = "mlflow.data.context"  # MLflow's tag on a run's dataset input
_PAGE = 1000
_EXPERIMENTS_PER_SEARCH = 100


class DatasetNotFoundError(LookupError):
    def __init__(self, key: str, known: list[str]):
        listing = ", ".join(known[:20]) if known else "none"
        more = f" and {len(known) - 20} more" if len(known) > 20 else ""
        super().__init__(f"no dataset named {key!r} or with that digest (known: {listing}{more})")


@dataclass(frozen=True)
class VersionRef:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class DatasetUse:
    """One run that logged the dataset, and the model versions registered from that run."""

    run_id: str
    run_name: str
    experiment: str
    context: str
    started: datetime
    versions: tuple[VersionRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = self.started.isoformat()
        data["versions"] = [str(v) for v in self.versions]
        return data


@dataclass
class DatasetRecord:
    name: str
    digest: str
    source_type: str
    source: str
    schema: list[dict[str, str]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    uses: list[DatasetUse] = field(default_factory=list)

    @property
    def rows(self) -> int | None:
        value = self.profile.get("num_rows")
        return int(value) if isinstance(value, int | float) else None

    @property
    def columns(self) -> int | None:
        if self.schema:
            return len(self.schema)
        elements = self.profile.get("num_elements")
        if self.rows and isinstance(elements, int | float):
            return int(elements) // self.rows
        return None

    @property
    def last_used(self) -> datetime:
        return max(use.started for use in self.uses)

    @property
    def runs(self) -> list[str]:
        return list(dict.fromkeys(use.run_id for use in self.uses))

    @property
    def versions(self) -> list[VersionRef]:
        return list(dict.fromkeys(v for use in self.uses for v in use.versions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
            "rows": self.rows,
            "columns": self.columns,
            "schema": self.schema,
            "profile": self.profile,
            "last_used": self.last_used.isoformat(),
            "runs": self.runs,
            "versions": [str(v) for v in self.versions],
            "uses": [use.to_dict() for use in self.uses],
        }


def source_text(source: str) -> str:
    """A dataset source as one string: its URI/URL/path when MLflow recorded one."""
    try:
        parsed = json.loads(source)
    except (TypeError, ValueError):
        return str(source)
    if isinstance(parsed, dict):
        for key in ("uri", "url", "path", "table_name", "name"):
            if isinstance(parsed.get(key), str):
                return parsed[key]
    return str(source)


def schema_columns(schema: str) -> list[dict[str, str]]:
    """``[{"name", "type"}]`` from MLflow's recorded schema JSON (empty if there is none)."""
    try:
        parsed = json.loads(schema) if schema else {}
    except ValueError:
        return []
    specs = parsed.get("mlflow_colspec") or parsed.get("mlflow_tensorspec") or []
    if isinstance(specs, str):  # some sources nest the spec list as JSON text
        try:
            specs = json.loads(specs)
        except ValueError:
            return []
    columns = []
    for index, spec in enumerate(specs if isinstance(specs, list) else []):
        if isinstance(spec, dict):
            kind = spec.get("type")
            columns.append(
                {
                    "name": str(spec.get("name", index)),
                    "type": kind if isinstance(kind, str) else json.dumps(kind),
                }
            )
    return columns


def _profile(profile: str) -> dict[str, Any]:
    try:
        parsed = json.loads(profile) if profile else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class DatasetCatalog:
    """Every dataset input across the tracking server's active experiments and runs."""

    def __init__(self, tracking_uri: str | None = None):
        from mlflow import MlflowClient

        if tracking_uri is None:
            from driftloop.settings import get_settings

            tracking_uri = get_settings().resolved_tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # --- reading MLflow --------------------------------------------------------------
    def _experiments(self) -> dict[str, str]:
        from mlflow.entities import ViewType

        names: dict[str, str] = {}
        token = None
        while True:
            page = self.client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=_PAGE, page_token=token
            )
            names.update({e.experiment_id: e.name for e in page})
            token = page.token
            if not token:
                return names

    def _runs(self, experiment_ids: list[str]) -> Iterator[Any]:
        from mlflow.entities import ViewType

        for start in range(0, len(experiment_ids), _EXPERIMENTS_PER_SEARCH):
            chunk = experiment_ids[start : start + _EXPERIMENTS_PER_SEARCH]
            token = None
            while True:
                page = self.client.search_runs(
                    chunk, run_view_type=ViewType.ACTIVE_ONLY, max_results=_PAGE, page_token=token
                )
                yield from page
                token = page.token
                if not token:
                    break

    def _versions_by_run(self, run_ids: Iterable[str]) -> dict[str, list[VersionRef]]:
        wanted = set(run_ids)
        found: dict[str, list[VersionRef]] = {}
        if not wanted:
            return found
        token = None
        while True:
            page = self.client.search_model_versions(max_results=_PAGE, page_token=token)
            for version in page:
                if version.run_id in wanted:
                    ref = VersionRef(version.name, str(version.version))
                    found.setdefault(version.run_id, []).append(ref)
            token = page.token
            if not token:
                break
        for refs in found.values():
            refs.sort(key=lambda ref: (ref.name, int(ref.version)))
        return found

    # --- the catalogue ------------------------------------------------------------------
    def datasets(self) -> list[DatasetRecord]:
        """Every (name, digest) any active run logged, most recently used first."""
        experiments = self._experiments()
        logged: list[tuple[Any, Any]] = []  # (run, dataset input)
        for run in self._runs(list(experiments)):
            inputs = run.inputs.dataset_inputs if run.inputs is not None else []
            logged.extend((run, dataset_input) for dataset_input in inputs or [])
        versions = self._versions_by_run(run.info.run_id for run, _ in logged)
        records: dict[tuple[str, str], DatasetRecord] = {}
        for run, dataset_input in logged:
            dataset = dataset_input.dataset
            key = (dataset.name, dataset.digest)
            record = records.get(key)
            if record is None:
                record = records[key] = DatasetRecord(
                    name=dataset.name,
                    digest=dataset.digest,
                    source_type=dataset.source_type or "",
                    source=source_text(dataset.source),
                    schema=schema_columns(dataset.schema),
                    profile=_profile(dataset.profile),
                )
            tags = {tag.key: tag.value for tag in dataset_input.tags or []}
            record.uses.append(
                DatasetUse(
                    run_id=run.info.run_id,
                    run_name=run.info.run_name or "",
                    experiment=experiments.get(run.info.experiment_id, run.info.experiment_id),
                    context=tags.get(CONTEXT_TAG, ""),
                    started=datetime.fromtimestamp((run.info.start_time or 0) / 1000, tz=UTC),
                    versions=tuple(versions.get(run.info.run_id, [])),
                )
            )
        for record in records.values():
            record.uses.sort(key=lambda use: use.started, reverse=True)
        return sorted(records.values(), key=lambda r: (r.last_used, r.name), reverse=True)

    def find(self, key: str) -> list[DatasetRecord]:
        """The datasets named ``key``, or whose digest is ``key`` or starts with it."""
        everything = self.datasets()
        matches = [r for r in everything if r.name == key]
        if not matches and key:
            matches = [r for r in everything if r.digest.startswith(key.lower())]
        if not matches:
            raise DatasetNotFoundError(key, sorted({r.name for r in everything}))
        return matches
