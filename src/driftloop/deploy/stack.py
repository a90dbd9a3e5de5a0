"""The embedded stack: every driftloop service as a supervised local process.

``driftloop up`` starts, in order, the MLflow server, the drift monitor, the
predictor (its payload logger pointed at the monitor), the retraining trigger,
and alerting: Prometheus + Alertmanager when their binaries are installed,
otherwise the monitor's built-in evaluator posting the same webhook. Each
process gets its own session (so stopping it stops its children), a log and a
pid file under ``settings.home/stack``, and is health-checked with a bounded
wait. ``driftloop down`` stops them (SIGTERM, then SIGKILL after a timeout);
``driftloop status`` reports them. All of it binds and calls 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from driftloop.deploy import stack_config
from driftloop.settings import Settings

LOOPBACK = "127.0.0.1"
ALERTMANAGER_BINARY = "prometheus-alertmanager"
PROMETHEUS_BINARY = "prometheus"
# Start order; ``down`` stops in reverse.
ORDER = ("mlflow", "monitor", "predictor", "trigger", "alertmanager", "prometheus", "evaluator")
# A driftloop command run by the interpreter that runs us (no PATH lookup, no venv guessing).
DRIFTLOOP = [sys.executable, "-c", "import sys; from driftloop.cli import main; sys.exit(main())"]


# How long a condition must hold before a local alert fires (Prometheus rules and the
# built-in evaluator alike): seconds on a laptop, where the cluster rules say minutes.
LOCAL_ALERT_FOR = "2s"


class StackError(RuntimeError):
    """A stack process could not be started or did not become healthy."""


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int | None = None
    health_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass
class ServiceState:
    name: str
    pid: int | None
    port: int | None
    running: bool
    healthy: bool
    log: Path
    restarts: int = 0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "port": self.port,
            "running": self.running,
            "healthy": self.healthy,
            "log": str(self.log),
            "restarts": self.restarts,
            "note": self.note,
        }


def alerting_binaries() -> dict[str, str] | None:
    found = {name: shutil.which(name) for name in (PROMETHEUS_BINARY, ALERTMANAGER_BINARY)}
    return found if all(found.values()) else None


def is_remote_tracking(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def process_start_ticks(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot): tells a pid from its reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has finished; nothing to stop
        return None
    return int(fields[19])


def pid_is_ours(pid: int | None, ticks: int | None) -> bool:
    return (
        bool(pid)
        and process_start_ticks(pid) is not None
        and (ticks is None or process_start_ticks(pid) == ticks)
    )


def healthy(url: str | None, timeout_s: float = 2.0) -> bool:
    if url is None:
        return True
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


class Stack:
    def __init__(
        self,
        settings: Settings,
        model: str = "sentiment",
        *,
        alerting: str = "auto",  # auto | prometheus | evaluator | none
        say: Callable[[str], None] | None = None,
        repeat_interval: str = "30s",
    ) -> None:
        self.settings = settings
        self.model = model
        # captured once: callers may point MLFLOW_TRACKING_URI at our server afterwards
        self.backend_uri = settings.resolved_tracking_uri
        self.dir = Path(settings.home) / "stack"
        self.say = say or (lambda message: None)
        if alerting == "auto":
            alerting = "prometheus" if alerting_binaries() else "evaluator"
        if alerting == "prometheus" and not alerting_binaries():
            raise StackError(
                f"{PROMETHEUS_BINARY} and {ALERTMANAGER_BINARY} are not both installed; "
                "install them (apt-get install prometheus prometheus-alertmanager) or use "
                "--no-prometheus for the built-in evaluator"
            )
        self.alerting = alerting
        # how often Alertmanager re-sends a still-firing alert (the trigger dedupes them)
        self.repeat_interval = repeat_interval
        self._processes: dict[str, subprocess.Popen] = {}
        self._restarts: dict[str, int] = {}

    # --- addresses -------------------------------------------------------------
    @property
    def manages_mlflow(self) -> bool:
        return not is_remote_tracking(self.backend_uri)

    @property
    def tracking_uri(self) -> str:
        if self.manages_mlflow:
            return f"http://{LOOPBACK}:{self.settings.mlflow_port}"
        return self.backend_uri

    def url(self, name: str) -> str:
        port = {
            "mlflow": self.settings.mlflow_port,
            "predictor": self.settings.predictor_port,
            "monitor": self.settings.monitor_port,
            "trigger": self.settings.trigger_port,
            "prometheus": self.settings.prometheus_port,
            "alertmanager": self.settings.alertmanager_port,
        }[name]
        return f"http://{LOOPBACK}:{port}"

    @property
    def trigger_webhook(self) -> str:
        return f"{self.url('trigger')}/alerts"

    @property
    def token_file(self) -> Path:
        return self.dir / "trigger-token"

    def trigger_token(self) -> str:
        """The configured token, else one generated once for this stack (file mode 0600)."""
        if self.settings.trigger_token:
            return self.settings.trigger_token
        if not self.token_file.is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return self.token_file.read_text().strip()

    # --- what runs ---------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        """The environment every stack process shares: one home, registry, store, token."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
        for name, value in self.settings.model_dump().items():
            if value is None:
                continue
            if isinstance(value, dict | list):
                env[f"DRIFTLOOP_{name.upper()}"] = json.dumps(value)
            elif isinstance(value, str | int | float | bool | Path):
                env[f"DRIFTLOOP_{name.upper()}"] = str(value)
        # MLFLOW_TRACKING_URI is the one source of truth; its DRIFTLOOP_ twin would conflict
        env.pop("DRIFTLOOP_TRACKING_URI", None)
        env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        env["DRIFTLOOP_HOME"] = str(self.settings.home)
        env["DRIFTLOOP_TRIGGER_TOKEN"] = self.trigger_token()
        env["DRIFTLOOP_TRIGGER_HOST"] = LOOPBACK
        env["DRIFTLOOP_LOGGER_URL"] = self.settings.logger_url or f"{self.url('monitor')}/"
        env["DRIFTLOOP_EVALUATOR_WEBHOOK_URL"] = self.trigger_webhook
        env["DRIFTLOOP_TRIGGER_URL"] = self.trigger_webhook
        env["DRIFTLOOP_PROMETHEUS_URL"] = self.url("prometheus")
        env["DRIFTLOOP_ALERTMANAGER_URL"] = self.url("alertmanager")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def services(self) -> list[Service]:
        s = self.settings
        services = []
        if self.manages_mlflow:
            backend = self.backend_uri
            services.append(
                Service(
                    "mlflow",
                    [
                        str(Path(sys.executable).parent / "mlflow"),
                        "server",
                        "--backend-store-uri",
                        backend,
                        "--default-artifact-root",
                        s.artifact_root.resolve().as_uri(),
                        "--host",
                        LOOPBACK,
                        "--port",
                        str(s.mlflow_port),
                        "--workers",
                        "1",
                    ],
                    s.mlflow_port,
                    f"{self.url('mlflow')}/health",
                )
            )
        services.append(
            Service(
                "monitor",
                [
                    *DRIFTLOOP,
                    "monitor",
                    self.model,
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(s.monitor_port),
                ],
                s.monitor_port,
                f"{self.url('monitor')}/healthz",
            )
        )
        services.append(
            Service(
                "predictor",
                [
                    *DRIFTLOOP,
                    "serve",
                    self.model,
                    "--http-port",
                    str(s.predictor_port),
                    "--grpc-port",
                    str(s.predictor_grpc_port),
                ],
                s.predictor_port,
                f"{self.url('predictor')}/v2/health/ready",
            )
        )
        services.append(
            Service(
                "trigger",
                [*DRIFTLOOP, "trigger", "--host", LOOPBACK, "--port", str(s.trigger_port)],
                s.trigger_port,
                f"{self.url('trigger')}/healthz",
            )
        )
        if self.alerting == "prometheus":
            binaries = alerting_binaries()
            services.append(
                Service(
                    "alertmanager",
                    [
                        binaries[ALERTMANAGER_BINARY],
                        f"--config.file={self.dir / 'alertmanager.yml'}",
                        f"--storage.path={self.dir / 'alertmanager-data'}",
                        f"--web.listen-address={LOOPBACK}:{s.alertmanager_port}",
                        "--cluster.listen-address=",
                    ],
                    s.alertmanager_port,
                    f"{self.url('alertmanager')}/-/ready",
                )
            )
            services.append(
                Service(
                    "prometheus",
                    [
                        binaries[PROMETHEUS_BINARY],
                        f"--config.file={self.dir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
                        f"--web.listen-address={LOOPBACK}:{s.prometheus_port}",
                    ],
                    s.prometheus_port,
                    f"{self.url('prometheus')}/-/ready",
                )
            )
        elif self.alerting == "evaluator":
            services.append(
                Service(
                    "evaluator",
                    [
                        *DRIFTLOOP,
                        "monitor",
                        self.model,
                        "--evaluate-alerts",
                        "--host",
                        LOOPBACK,
                        "--port",
                        str(s.monitor_port),
                        "--alert-for",
                        LOCAL_ALERT_FOR,
                    ],
                    note="built-in alert evaluator (Prometheus/Alertmanager not used)",
                )
            )
        return services

    def write_alerting_configs(self, names: set[str]) -> None:
        if "alertmanager" in names:
            self.trigger_token()
            stack_config.write_yaml(
                self.dir / "alertmanager.yml",
                stack_config.alertmanager_config(
                    self.trigger_webhook,
                    token_file=self.token_file,
                    repeat_interval=self.repeat_interval,
                ),
            )
        if "prometheus" not in names:
            return
        stack_config.write_yaml(
            self.dir / "alert_rules.yaml",
            stack_config.stack_rules(self.settings, max_for=LOCAL_ALERT_FOR),
        )
        targets = {
            "driftloop-predictor": f"{LOOPBACK}:{self.settings.predictor_port}",
            "driftloop-monitor": f"{LOOPBACK}:{self.settings.monitor_port}",
            "driftloop-trigger": f"{LOOPBACK}:{self.settings.trigger_port}",
        }
        stack_config.write_yaml(
            self.dir / "prometheus.yml",
            stack_config.prometheus_config(
                targets,
                rules_path=self.dir / "alert_rules.yaml",
                alertmanager=f"{LOOPBACK}:{self.settings.alertmanager_port}",
            ),
        )

    # --- pid files -------------------------------------------------------------
    def pid_file(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def _read_pid(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.pid_file(name).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def running_pid(self, name: str) -> int | None:
        process = self._processes.get(name)
        if process is not None and process.poll() is not None:
            return None  # our child exited (and is now reaped)
        record = self._read_pid(name)
        if record and pid_is_ours(record.get("pid"), record.get("ticks")):
            return record["pid"]
        return None

    # --- lifecycle ---------------------------------------------------------------
    def start(self, service: Service) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**self.child_env(), **service.env}
        with open(self.log_file(service.name), "ab") as log:
            log.write(
                f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {service.argv}\n".encode()
            )
            log.flush()
            try:
                process = subprocess.Popen(
                    service.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self.dir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StackError(f"cannot start {service.name}: {exc}") from exc
        self._processes[service.name] = process
        record = {
            "pid": process.pid,
            "ticks": process_start_ticks(process.pid),
            "port": service.port,
            "health_url": service.health_url,
            "argv": service.argv,
            "started_at": time.time(),
        }
        self.pid_file(service.name).write_text(json.dumps(record))
        return process.pid

    def wait_healthy(self, service: Service, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.settings.stack_health_timeout_s)
        while time.monotonic() < deadline:
            if self.running_pid(service.name) is None:
                raise StackError(
                    f"{service.name} exited during start-up; last log lines:\n"
                    f"{self.log_tail(service.name)}"
                )
            if service.health_url is None:
                # nothing to ask: surviving a short grace period is the health check
                time.sleep(2.0)
                if self.running_pid(service.name) is not None:
                    return
                continue
            if healthy(service.health_url):
                return
            time.sleep(0.25)
        raise StackError(
            f"{service.name} not healthy at {service.health_url} after "
            f"{timeout_s or self.settings.stack_health_timeout_s:.0f}s; last log lines:\n"
            f"{self.log_tail(service.name)}"
        )

    def log_tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def up(self, only: list[str] | None = None) -> list[ServiceState]:
        """Start what is not running (in order) and wait for each to be healthy.

        On failure everything this call started is stopped again before raising.
        """
        for name in ORDER:
            port = getattr(self.settings, f"{name}_port", None)
            if port is not None and not 0 < port < 65536:
                raise StackError(f"{name}_port={port} is not a TCP port (1-65535)")
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.alerting == "prometheus":
            self.write_alerting_configs(set(only) if only is not None else set(ORDER))
        started: list[str] = []
        skipped: set[str] = set()
        try:
            for service in self.services():
                if only is not None and service.name not in only:
                    continue
                if (
                    service.name in ("monitor", "predictor")
                    and not skipped
                    and not self._has_champion()
                ):
                    skipped = {"monitor", "predictor"}
                    self.say(
                        f"no champion for {self.model!r} in {self.tracking_uri}: monitor and "
                        "predictor not started (train one with `driftloop train`, then "
                        "`driftloop up` again)"
                    )
                if service.name in skipped:
                    continue
                if self.running_pid(service.name) is not None:
                    self.say(f"{service.name} already running")
                    continue
                if service.port is not None and port_in_use(service.port):
                    raise StackError(
                        f"port {service.port} for {service.name} is taken by another process; "
                        f"set DRIFTLOOP_{service.name.upper()}_PORT to a free port"
                    )
                pid = self.start(service)
                started.append(service.name)
                self.wait_healthy(service)
                self.say(f"{service.name} up (pid {pid}{self._port_text(service)})")
        except BaseException:
            for name in reversed(started):
                self.stop(name)
            raise
        return self.status()

    def _has_champion(self) -> bool:
        try:
            from driftloop.registry import ModelRegistry

            registry = ModelRegistry(tracking_uri=self.tracking_uri)
            return registry.version_by_alias(self.model, "champion") is not None
        except Exception:  # unknown model or unreachable registry: nothing to serve
            return False

    @staticmethod
    def _port_text(service: Service) -> str:
        return f", {LOOPBACK}:{service.port}" if service.port else ""

    def stop(self, name: str, timeout_s: float = 15.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout_s``; True if it was running."""
        pid = self.running_pid(name)
        was_running = pid is not None
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout_s
            while self._alive(name, pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._alive(name, pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                while self._alive(name, pid) and time.monotonic() < deadline + 5:
                    time.sleep(0.1)
        process = self._processes.pop(name, None)
        if process is not None:
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.pid_file(name).unlink(missing_ok=True)
        return was_running

    def _alive(self, name: str, pid: int) -> bool:
        process = self._processes.get(name)
        if process is not None:
            return process.poll() is None
        return process_start_ticks(pid) is not None

    def down(self, timeout_s: float = 15.0) -> list[str]:
        stopped = []
        for name in reversed(ORDER):
            if self.pid_file(name).exists() or name in self._processes:
                if self.stop(name, timeout_s):
                    stopped.append(name)
        return stopped

    def restart(self, name: str) -> int:
        service = next(s for s in self.services() if s.name == name)
        self.stop(name)
        self._restarts[name] = self._restarts.get(name, 0) + 1
        pid = self.start(service)
        self.wait_healthy(service)
        return pid

    def status(self) -> list[ServiceState]:
        states = []
        for service in self.services():
            pid = self.running_pid(service.name)
            states.append(
                ServiceState(
                    name=service.name,
                    pid=pid,
                    port=service.port,
                    running=pid is not None,
                    healthy=pid is not None and healthy(service.health_url, timeout_s=1.0),
                    log=self.log_file(service.name),
                    restarts=self._restarts.get(service.name, 0),
                    note=service.note,
                )
            )
        return states

    def supervise(
        self, stop: threading.Event, interval_s: float = 2.0, max_restarts: int = 5
    ) -> None:
        """Restart crashed processes until ``stop`` is set (at most ``max_restarts`` each)."""
        known = {s.name: s for s in self.services()}
        while not stop.wait(interval_s):
            for name, service in known.items():
                if not self.pid_file(name).exists() or self.running_pid(name) is not None:
                    continue
                if self._restarts.get(name, 0) >= max_restarts:
                    continue
                # Counted before the new process exists, so a status that shows the new
                # pid never shows the old count.
                self._restarts[name] = self._restarts.get(name, 0) + 1
                self.say(f"{name} exited; restarting ({self._restarts[name]}/{max_restarts})")
                try:
                    self.start(service)
                    self.wait_healthy(service)
                except StackError as exc:
                    self.say(f"{name} restart failed: {exc}")


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


# --- what `driftloop status` shows ------------------------------------------------
def champion_of(stack: Stack) -> dict[str, Any]:
    uri = stack.tracking_uri
    if stack.manages_mlflow and stack.running_pid("mlflow") is None:
        # read the server's backend store directly, if it exists (never create one here)
        database = stack.backend_uri.removeprefix("sqlite:///")
        if stack.backend_uri.startswith("sqlite:///") and not Path(database).is_file():
            return {"version": None, "error": "no registry yet"}
        uri = stack.backend_uri
    try:
        from driftloop.registry import ModelRegistry

        version = ModelRegistry(tracking_uri=uri).version_by_alias(stack.model, "champion")
    except Exception as exc:  # registry down or model unknown: status still prints
        return {"version": None, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if version is None:
        return {"version": None}
    return {"version": str(version.version), "tags": dict(getattr(version, "tags", {}) or {})}


def trigger_view(stack: Stack, limit: int = 20) -> dict[str, Any]:
    if stack.running_pid("trigger") is None:
        return ledger_view(stack, limit)
    headers = {"Authorization": f"Bearer {stack.trigger_token()}"}
    base = stack.url("trigger")
    try:
        decisions = httpx.get(
            f"{base}/decisions", params={"limit": limit}, headers=headers, timeout=3
        )
        runs = httpx.get(f"{base}/runs", params={"limit": limit}, headers=headers, timeout=3)
        decisions.raise_for_status()
        runs.raise_for_status()
    except httpx.HTTPError as exc:
        return {"decisions": [], "runs": [], "trigger_error": f"trigger not reachable: {exc}"}
    return {"decisions": decisions.json()["decisions"], "runs": runs.json()["runs"]}


def ledger_view(stack: Stack, limit: int) -> dict[str, Any]:
    """What the stopped trigger recorded, read from its ledger (never created here)."""
    database = Path(stack.settings.home) / "trigger" / "trigger.db"
    if not database.is_file():
        return {"decisions": [], "runs": [], "trigger_error": "trigger is not running"}
    from driftloop.trigger.ledger import Ledger

    ledger = Ledger.at_home(stack.settings.home)
    try:
        return {
            "decisions": [d.to_json() for d in ledger.decisions(limit=limit)],
            "runs": [r.to_json() for r in ledger.runs(limit=limit)],
            "trigger_error": "trigger is not running (showing its ledger)",
        }
    finally:
        ledger.dispose()


def collect_status(stack: Stack) -> dict[str, Any]:
    return {
        "model": stack.model,
        "alerting": stack.alerting,
        "processes": [state.to_json() for state in stack.status()],
        "champion": champion_of(stack),
        **trigger_view(stack),
    }
