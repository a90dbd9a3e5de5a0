"""Run a pipeline on this machine through ``kfp.local`` (the embedded stack).

Every task runs as a subprocess of this Python (``SubprocessRunner(use_venv=False)``),
so it sees the same installed driftloop and the same environment: the resolved
MLflow tracking URI and the settings are exported before the run starts.

A fresh Python per task would import MLflow, pandas, scikit-learn (and
alibi-detect) again in every step: the steps' work runs instead in children of
a warm step host (``driftloop.step_host``), the one the environment names (the
trigger keeps one warm) or one started for this run.

kfp.local reports progress only as log lines on stdout. They are captured into
the run's ``run.log`` and parsed as they arrive, which gives per-task start/end
events for a progress display, per-task timings and per-task logs; the task
outputs themselves are read back from each task's ``executor_output.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftloop.environ import patched_environ
from driftloop.security import mask_secrets, open_private, private_dir, secret_values
from driftloop.settings import Settings
from driftloop.step_host import ENV_VAR as STEP_HOST_ENV
from driftloop.step_host import StepHost, host_in_environment, preload_for

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_PIPELINE_FAILED = re.compile(r"Pipeline '[^']+' finished with status FAILURE")

_EXPECTED_LOCAL_WARNINGS = (
    r".*have no effect in the current local runner",
    r".*custom or non-Python base image",
)

# kfp.local keeps its configuration in a process-wide singleton.
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class TaskEvent:
    """A task started ("started") or ended ("finished", with status and seconds)."""

    kind: str
    task: str
    at: float
    status: str | None = None
    seconds: float | None = None


@dataclass
class TaskRecord:
    name: str
    status: str = "RUNNING"
    started_at: float | None = None
    seconds: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


@dataclass
class LocalRunResult:
    pipeline: str
    run_id: str
    run_dir: Path
    log_path: Path
    status: str
    seconds: float
    tasks: dict[str, TaskRecord]
    error: str | None = None
    # what the pipeline function returned (its declared outputs); cached tasks
    # log no start/finish lines, so this is where their results show
    pipeline_outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        """Task name → its parameter outputs (``Output`` for a single return value)."""
        return {name: record.outputs for name, record in self.tasks.items()}

    @property
    def timings(self) -> dict[str, float]:
        """Task name → wall seconds, in the order the tasks ran."""
        return {n: r.seconds for n, r in self.tasks.items() if r.seconds is not None}

    def output(self, task: str, name: str = "Output", default: Any = None) -> Any:
        return self.tasks[task].outputs.get(name, default) if task in self.tasks else default

    def json_output(self, task: str, name: str = "Output") -> Any:
        """A parameter output that a component wrote as JSON, decoded (None if absent)."""
        raw = self.output(task, name)
        return json.loads(raw) if isinstance(raw, str) and raw else None

    def artifact_json(self, task: str, name: str) -> Any:
        """An output artifact that a component wrote as a JSON file, decoded (None if absent)."""
        uri = self.tasks[task].artifacts.get(name) if task in self.tasks else None
        path = Path(uri.removeprefix("file://")) if uri else None
        if path is None or not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    @property
    def failed_task(self) -> str | None:
        return next((n for n, r in self.tasks.items() if r.status == "FAILURE"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "log_path": str(self.log_path),
            "status": self.status,
            "seconds": self.seconds,
            "error": self.error,
            "outputs": self.outputs,
            "timings": self.timings,
        }


class _LogTap(io.TextIOBase):
    """A stdout stand-in: writes everything to the run log and turns lines into events."""

    def __init__(
        self,
        sink: io.TextIOBase,
        progress: Callable[[TaskEvent], None] | None,
        secrets: Iterable[str] = (),
    ):
        self._sink = sink
        self._secrets = tuple(secrets)
        self._progress = progress
        self._pending = ""
        self.tasks: dict[str, TaskRecord] = {}
        self.current: TaskRecord | None = None
        self.pipeline_failed = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            # whole lines reach the log, masked: a secret never splits across writes
            masked = mask_secrets(line, self._secrets)
            self._sink.write(masked + "\n")
            self._line(_ANSI.sub("", masked))
        return len(text)

    def flush(self) -> None:
        self._sink.flush()

    def finish(self) -> None:
        """Write (masked) what is left without a final newline."""
        if self._pending:
            self._sink.write(mask_secrets(self._pending, self._secrets))
            self._pending = ""
        self._sink.flush()

    def _line(self, line: str) -> None:
        now = time.time()
        if started := _STARTED.search(line):
            record = TaskRecord(name=started.group(1), started_at=now)
            self.tasks[record.name] = self.current = record
            self._emit(TaskEvent("started", record.name, now))
        elif finished := _FINISHED.search(line):
            record = self.tasks.setdefault(finished.group(1), TaskRecord(finished.group(1), None))
            record.status = finished.group(2)
            record.seconds = round(now - record.started_at, 3) if record.started_at else None
            self.current = None
            self._emit(TaskEvent("finished", record.name, now, record.status, record.seconds))
        elif _PIPELINE_FAILED.search(line):
            self.pipeline_failed = True
        elif self.current is not None:
            self.current.log.append(line)

    def _emit(self, event: TaskEvent) -> None:
        if self._progress is not None:
            self._progress(event)


def _environment(settings: Settings) -> dict[str, str]:
    """What the task subprocesses must see to act on the same home, registry and store."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, (str, int, float, bool, Path)) and value is not None:
            env[f"DRIFTLOOP_{name.upper()}"] = str(value)
    # The ecosystem variable wins inside the tasks; its DRIFTLOOP_ twin would only
    # be a second source of truth (and settings refuse to run when they disagree).
    env.pop("DRIFTLOOP_TRACKING_URI", None)
    env["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri
    return env


def _read_outputs(task_dir: Path, record: TaskRecord) -> None:
    executor_output = task_dir / "executor_output.json"
    if executor_output.is_file():
        data = json.loads(executor_output.read_text(encoding="utf-8"))
        record.outputs = dict(data.get("parameterValues", {}))
        for name, listing in data.get("artifacts", {}).items():
            artifacts = listing.get("artifacts", [])
            if artifacts and artifacts[0].get("uri"):
                record.artifacts[name] = artifacts[0]["uri"]
    for path in sorted(task_dir.iterdir()):
        if path.name != "executor_output.json":
            record.artifacts.setdefault(path.name, str(path))


@contextlib.contextmanager
def _stopping(host: StepHost | None):
    try:
        yield
    finally:
        if host is not None:
            host.stop()


def _pipeline_name(pipeline_func) -> str:
    spec = getattr(pipeline_func, "pipeline_spec", None)
    if spec is not None:
        return spec.pipeline_info.name
    return getattr(pipeline_func, "name", "pipeline")


def run_pipeline_locally(
    pipeline_func,
    arguments: Mapping[str, Any],
    settings: Settings,
    progress: Callable[[TaskEvent], None] | None = None,
    *,
    enable_caching: bool = False,
    cache_root: Path | None = None,
    warm_steps: bool = True,
) -> LocalRunResult:
    """Run ``pipeline_func`` with ``arguments`` through kfp.local and collect what it produced.

    A failing task does not raise: the result says ``status == "FAILURE"``,
    names the task (``failed_task``) and keeps its log. Invalid arguments
    (unknown names, wrong types) raise ``ValueError``/``TypeError`` before
    anything runs. Outputs go under ``settings.resolved_pipeline_root``.
    ``enable_caching`` turns kfp.local's task cache on (kept in ``cache_root``,
    by default ``<pipeline root>/.kfp_cache``, so later runs can hit it); tasks
    that set caching off still run. ``warm_steps``: run the steps' work in a warm
    step host (the environment's, else one for this run, stopped at the end);
    False: every task imports what it needs itself.
    """
    from kfp import local

    settings.ensure_home()
    name = _pipeline_name(pipeline_func)
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    # A root per run: kfp.local names its run folder itself, and concurrent
    # runs (CLI + trigger) must never be confused with each other.
    run_root = settings.resolved_pipeline_root / f"{name}-{run_id}"
    private_dir(run_root.parent)
    run_root.mkdir(mode=0o700)
    log_path = run_root / "run.log"

    # run.log is 0600 and masks passwords in URLs and tokens (tasks print their arguments)
    with _RUN_LOCK, open_private(log_path, "w", encoding="utf-8") as log_file:
        tap = _LogTap(log_file, progress, secrets=secret_values(settings))
        started = time.time()
        error: str | None = None
        pipeline_outputs: dict[str, Any] = {}
        environment = _environment(settings)
        host = None
        if not warm_steps:
            environment[STEP_HOST_ENV] = ""
        elif host_in_environment() is None:
            host = StepHost.start(
                preload_for(arguments.get("blueprint")),
                log_path=run_root / "step-host.log",
                env={**os.environ, **environment},
            )
            environment[STEP_HOST_ENV] = host.socket_path
        with patched_environ(environment), _stopping(host):
            local.init(
                runner=local.SubprocessRunner(use_venv=False),
                pipeline_root=str(run_root),
                workspace_root=str(run_root / ".workspace"),
                raise_on_error=True,
                enable_caching=enable_caching,
                cache_root=str(cache_root or settings.resolved_pipeline_root / ".kfp_cache"),
            )
            with contextlib.redirect_stdout(tap), warnings.catch_warnings():
                # Expected, per task, on every local run: the cluster-only settings
                # (resources, image) are meant for KFP and kfp.local says it skips them.
                for message in _EXPECTED_LOCAL_WARNINGS:
                    warnings.filterwarnings("ignore", message=message)
                try:
                    returned = pipeline_func(**dict(arguments))
                    pipeline_outputs = dict(getattr(returned, "outputs", None) or {})
                except RuntimeError as exc:
                    # kfp.local's way of saying a task failed; the task's log has the cause.
                    error = _ANSI.sub("", str(exc))
        seconds = round(time.time() - started, 3)
        tap.finish()

    run_dirs = [path for path in run_root.iterdir() if path.is_dir() and path.name.startswith(name)]
    run_dir = run_dirs[0] if run_dirs else run_root
    for record in tap.tasks.values():
        task_dir = run_dir / record.name
        if task_dir.is_dir():
            _read_outputs(task_dir, record)
    failed = (
        error is not None
        or tap.pipeline_failed
        or any(record.status not in ("SUCCESS",) for record in tap.tasks.values())
    )
    return LocalRunResult(
        pipeline=name,
        run_id=run_id,
        run_dir=run_dir,
        log_path=log_path,
        status="FAILURE" if failed else "SUCCESS",
        seconds=seconds,
        tasks=tap.tasks,
        error=error,
        pipeline_outputs=pipeline_outputs,
    )
