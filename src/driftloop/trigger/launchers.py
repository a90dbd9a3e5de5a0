"""Launchers start a retraining run and report how it went.

One interface, two implementations, chosen in exactly one place
(:func:`make_launcher`) from ``settings.target``:

* :class:`LocalLauncher` runs the retraining pipeline with ``kfp.local`` in a
  separate worker process (``python -m driftloop.trigger.worker``), so the
  webhook receiver stays responsive while a run trains for minutes. With
  ``warm_steps`` it keeps a step host (``driftloop.step_host``) warm from the
  start: the worker and every pipeline step then run in children of a process
  that imported kfp, the pipelines and the ML stack before the alert came.
* :class:`KfpLauncher` submits the compiled retraining pipeline to Kubeflow
  Pipelines.

The pipeline is configuration, never a hard import: the trigger sits below the
pipelines package and does not import it. ``settings.retrain_pipeline`` and
``settings.retrain_runner`` name the pipeline and the function that runs a KFP
pipeline locally (``module:attribute``, resolved in the worker process);
the KFP launcher reads the compiled IR YAML from ``settings.retrain_package``,
else from the ``pipelines`` package's data (a resource lookup, not an import).
"""

from __future__ import annotations

import abc
import inspect
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftloop.security import private_dir
from driftloop.settings import Settings
from driftloop.trigger.ledger import RunRecord, utcnow

log = logging.getLogger(__name__)


@dataclass
class RetrainRequest:
    run_id: str
    model: str
    reason: str
    labels: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    starts_at: str = ""
    # blueprint options that override the champion's for this run (``driftloop retrain --param``)
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Launched:
    pid: int | None = None
    external_id: str | None = None


@dataclass
class RunStatus:
    state: str  # running | succeeded | failed | lost
    outputs: dict[str, Any] | None = None
    error: str | None = None


class LaunchError(RuntimeError):
    """The run could not be started at all."""


def champion_training_inputs(model: str, settings: Settings) -> dict[str, str]:
    """The blueprint instance and data source the model's champion was trained with.

    Read from the version's tags, never guessed from the model's name; empty
    when there is no champion (or no registry to ask).
    """
    from driftloop.environ import patched_environ
    from driftloop.lineage import TAG_BLUEPRINT, TAG_DATA_SOURCE, TAG_DATASET, TAG_LABEL_MAPPING
    from driftloop.registry import CHAMPION, ModelRegistry

    # one quick question: MLflow's default retries would hold the launch for minutes
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    try:
        with patched_environ(quick):
            registry = ModelRegistry(settings.resolved_tracking_uri)
            champion = registry.version_by_alias(model, CHAMPION)
    except Exception as exc:  # noqa: BLE001 - an unknown model or an unreachable registry
        log.warning("cannot read the champion of %s: %s", model, exc)
        return {}
    if champion is None:
        return {}
    names = {
        TAG_BLUEPRINT: "blueprint",
        TAG_DATASET: "dataset",
        TAG_DATA_SOURCE: "data_source",
        TAG_LABEL_MAPPING: "label_mapping",
    }
    return {argument: champion.tags[tag] for tag, argument in names.items() if tag in champion.tags}


def model_is_registered(model: str, settings: Settings) -> bool:
    """Whether ``model`` is a registered model in the MLflow registry.

    One quick question (no MLflow retries, 10 s timeout): an alert for a model
    the registry does not know must not launch anything, and the trigger must
    not hang on an unreachable registry. Raises :class:`LaunchError` when the
    registry cannot answer.
    """
    from driftloop.environ import patched_environ
    from driftloop.registry import ModelRegistry

    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    try:
        with patched_environ(quick):
            return ModelRegistry(settings.resolved_tracking_uri).exists(model)
    except Exception as exc:  # noqa: BLE001 - unreachable registry, invalid name, ...
        raise LaunchError(f"{type(exc).__name__}: {exc}".splitlines()[0][:300]) from exc


TRAINING_INPUTS = {"blueprint", "dataset", "data_source", "label_mapping"}


def with_params(blueprint: str, params: dict[str, Any]) -> str:
    """The blueprint instance text with ``params`` over its options (recorded on the version)."""
    from driftloop.blueprints.spec import BlueprintSpec

    spec = BlueprintSpec.parse(blueprint)
    return BlueprintSpec(spec.name, spec.options | params).to_text()


def candidate_arguments(
    request: RetrainRequest, settings: Settings, *, lookup: bool = True
) -> dict[str, Any]:
    """Every value a retraining pipeline may ask for, by the names pipelines use.

    The blueprint and the data come from the champion's tags; an alert's
    ``blueprint`` label is used only for a model with no champion yet.
    """
    trained_with = champion_training_inputs(request.model, settings) if lookup else {}
    blueprint = trained_with.pop("blueprint", None) or request.labels.get("blueprint")
    if blueprint and request.params:
        blueprint = with_params(blueprint, request.params)
    return {
        "model_name": request.model,
        "model": request.model,
        "blueprint": blueprint,
        **trained_with,
        "reason": request.reason,
        "trigger_reason": request.reason,
        "alert_fingerprint": request.fingerprint,
        "alert_starts_at": request.starts_at,
        "trigger_run_id": request.run_id,
        "seed": settings.seed,
        "experiment": settings.experiment,
        "min_improvement": settings.min_improvement,
        # no store URL (nor any other credential): a run's arguments are stored and
        # shown (spec files, run logs, the KFP UI); its tasks read secrets from their
        # environment -- the settings under kfp.local, Secrets on the cluster
        # operator-configured values (DRIFTLOOP_RETRAIN_ARGUMENTS, JSON) win
        **settings.retrain_arguments,
    }


def select_arguments(accepted: set[str], request: RetrainRequest, settings: Settings) -> dict:
    # only a pipeline that takes a blueprint or data needs the registry asked
    candidates = candidate_arguments(request, settings, lookup=bool(accepted & TRAINING_INPUTS))
    if "blueprint" in accepted and not candidates["blueprint"]:
        raise LaunchError(
            f"model {request.model!r} has no champion with a driftloop.blueprint tag and the "
            "alert names no blueprint label: nothing tells which blueprint to retrain"
        )
    return {name: value for name, value in candidates.items() if name in accepted}


def resolve_reference(reference: str) -> Any:
    """``"package.module:attribute"`` -> the object it names."""
    import importlib

    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise LaunchError(
            f"pipeline reference must look like 'module:attribute', got {reference!r}"
        )
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise LaunchError(f"cannot import pipeline {reference!r}: {exc}") from exc
    return target


def accepted_inputs(target: Any) -> set[str]:
    """Input names of a KFP pipeline/component, or parameter names of a plain function."""
    spec = getattr(target, "component_spec", None)
    if spec is not None:
        return set((spec.inputs or {}).keys())
    return set(inspect.signature(target).parameters)


class Launcher(abc.ABC):
    name: str = "launcher"

    @abc.abstractmethod
    def launch(self, request: RetrainRequest) -> Launched:
        """Start the run; raise :class:`LaunchError` when it cannot start."""

    @abc.abstractmethod
    def poll(self, run: RunRecord) -> RunStatus:
        """Current state of a run this launcher (or an earlier process) started."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources; a local launcher stops runs still in flight."""


class LocalLauncher(Launcher):
    """Runs each retraining in its own worker process (kfp.local inside it)."""

    name = "local"

    def __init__(
        self,
        settings: Settings,
        pipeline: str | None = None,
        *,
        runner: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        warm_steps: bool = False,
        step_host_modules: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline or settings.retrain_pipeline
        # how the worker runs a KFP pipeline (a plain function is just called)
        self.runner = runner or settings.retrain_runner
        self.runs_dir = Path(settings.home) / "trigger" / "runs"
        self.env = env
        self.cwd = cwd
        self._processes: dict[str, subprocess.Popen] = {}
        self.warm_steps = warm_steps
        # what the warm host imports (None: the worker, the pipeline and the ML stack)
        self.step_host_modules = step_host_modules
        self._host = None
        if warm_steps:
            self._step_host_environment()  # warm before the first alert, not after it

    def _step_host_environment(self) -> dict[str, str]:
        """``DRIFTLOOP_STEP_HOST`` for a worker: the warm host, (re)started if it died."""
        from driftloop.step_host import ENV_VAR, StepHost, StepHostError, preload_for

        if not self.warm_steps:
            return {}
        if self._host is None or not self._host.alive():
            modules = self.step_host_modules
            if modules is None:
                modules = [
                    *(reference.partition(":")[0] for reference in (self.runner, self.pipeline)),
                    "driftloop.trigger.worker",
                    *preload_for(None),
                ]
            private_dir(self.runs_dir.parent)
            try:
                self._host = StepHost.start(
                    modules, log_path=self.runs_dir.parent / "step-host.log"
                )
            except (OSError, StepHostError) as exc:
                # slower, not broken: every process imports for itself
                log.warning("no warm step host (%s); runs import the stack per step", exc)
                self._host = None
                return {}
        return {ENV_VAR: self._host.socket_path}

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def launch(self, request: RetrainRequest) -> Launched:
        from driftloop.security import open_private, write_private

        # private: a run's files may name the store or the registry
        private_dir(self.runs_dir.parent)
        private_dir(self.runs_dir)
        run_dir = private_dir(self.run_dir(request.run_id))
        spec = {
            "pipeline": self.pipeline,
            "runner": self.runner,
            "request": asdict(request),
            "result_path": str(run_dir / "result.json"),
        }
        spec_path = run_dir / "spec.json"
        write_private(spec_path, json.dumps(spec, indent=2))
        env = {**os.environ, **self._step_host_environment(), **(self.env or {})}
        env.setdefault("DRIFTLOOP_HOME", str(self.settings.home))
        if self.settings.store_url and "DRIFTLOOP_STORE_URL" not in (self.env or {}):
            # the run's tasks find the trigger's store through the environment they
            # inherit, never through an argument written into the run's files
            env["DRIFTLOOP_STORE_URL"] = self.settings.store_url
        log = open_private(run_dir / "worker.log", "ab")  # handed to the child
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "driftloop.trigger.worker", str(spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                # its own process group, so stopping it also stops kfp.local's task processes
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start the retraining worker: {exc}") from exc
        finally:
            log.close()
        self._processes[request.run_id] = process
        return Launched(pid=process.pid)

    def poll(self, run: RunRecord) -> RunStatus:
        result_path = self.run_dir(run.run_id) / "result.json"
        process = self._processes.get(run.run_id)
        if process is not None:
            code = process.poll()
            if code is None:
                return RunStatus("running")
            self._processes.pop(run.run_id, None)
            status = self._read_result(result_path)
            if status is None:
                return RunStatus(
                    "failed",
                    error=f"worker exited with status {code} without a result; "
                    f"see {self.run_dir(run.run_id) / 'worker.log'}",
                )
            return status
        # A run started by an earlier trigger process: judge it by its files and pid.
        status = self._read_result(result_path)
        if status is not None:
            return status
        if run.pid and _pid_alive(run.pid):
            return RunStatus("running")
        return RunStatus("lost", error="worker is gone and left no result")

    @staticmethod
    def _read_result(path: Path) -> RunStatus | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return RunStatus("failed", error=f"unreadable result {path}: {exc}")
        return RunStatus(data.get("state", "failed"), data.get("outputs"), data.get("error"))

    def close(self) -> None:
        for process in list(self._processes.values()):
            _stop_group(process)
        self._processes.clear()
        if self._host is not None:
            self._host.stop()
            self._host = None


class KfpLauncher(Launcher):
    """Submits the compiled retraining pipeline to a Kubeflow Pipelines API server."""

    name = "kfp"

    _done = {
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELED": "failed",
        "SKIPPED": "failed",
    }

    def __init__(self, settings: Settings, package_path: Path | None = None, client: Any = None):
        self.settings = settings
        self.package_path = Path(package_path or resolve_package_path(settings))
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from driftloop.pipelines_client import client

            self._client = client(self.settings.resolved_kfp_host)
        return self._client

    def package_inputs(self) -> set[str]:
        import yaml

        if not self.package_path.is_file():
            raise LaunchError(f"compiled retraining pipeline not found: {self.package_path}")
        # a package with kubernetes platform config holds a second YAML document
        documents = yaml.safe_load_all(self.package_path.read_text())
        spec = next((d for d in documents if isinstance(d, dict) and "root" in d), {})
        parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        return set(parameters)

    def launch(self, request: RetrainRequest) -> Launched:
        arguments = select_arguments(self.package_inputs(), request, self.settings)
        stamp = utcnow().strftime("%Y%m%d-%H%M%S")
        from driftloop.pipelines_client import submit_run

        try:
            # per-task caching (submit_run's rule): side-effecting steps are compiled uncached
            run_id = submit_run(
                self.package_path,
                arguments,
                run_name=f"retrain-{request.model}-{request.reason}-{stamp}",
                experiment=f"driftloop-{request.model}",
                host=self.settings.resolved_kfp_host,
            )
        except Exception as exc:  # no host, no package, or any KFP transport error
            raise LaunchError(f"KFP refused the run: {exc}") from exc
        return Launched(external_id=run_id)

    def poll(self, run: RunRecord) -> RunStatus:
        if not run.external_id:
            return RunStatus("lost", error="no KFP run id recorded")
        try:
            detail = self.client.get_run(run.external_id)
        except Exception as exc:  # transient API errors: keep waiting
            return RunStatus("running", error=f"KFP get_run failed: {exc}")
        state = str(getattr(detail, "state", "") or "").upper()
        if state in self._done:
            error = None if state == "SUCCEEDED" else f"KFP run ended {state}"
            return RunStatus(self._done[state], {"kfp_state": state}, error)
        return RunStatus("running")


def resolve_package_path(settings: Settings) -> Path:
    if settings.retrain_package:
        return Path(settings.retrain_package)
    try:
        from driftloop.pipelines_client import default_compiled_dir

        return default_compiled_dir() / "retraining.yaml"
    except ImportError:  # the pipelines package is not installed here
        return Path("pipelines") / "compiled" / "retraining.yaml"


def make_launcher(settings: Settings, *, warm_steps: bool = False) -> Launcher:
    """The one place the target picks a launcher. ``warm_steps``: a local launcher keeps a
    warm step host (the trigger service does; a one-off launch does not need one)."""
    if settings.target == "kubernetes":
        return KfpLauncher(settings)
    return LocalLauncher(settings, warm_steps=warm_steps)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); /proc tells them apart on Linux
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True


def _stop_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
