"""The supervisor: start, health-check, stop and restart the stack's processes.

Each process of the catalogue (:mod:`driftloop.stack.services`) gets its own
session (so stopping it stops its children), a log and a pid file under
``settings.home/stack``, and is health-checked with a bounded wait. ``down``
stops them (SIGTERM, then SIGKILL after a timeout); :meth:`Stack.supervise`
restarts crashed ones. A pid file records the process start time too, so a
reused pid is never taken for ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from driftloop.security import mask_secrets, open_private, private_dir, write_private
from driftloop.settings import Settings
from driftloop.stack.services import (
    LOOPBACK,
    ORDER,
    Service,
    ServiceCatalogue,
    StackError,
)


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


class Stack(ServiceCatalogue):
    """The catalogue's services as supervised processes of this machine."""

    def __init__(
        self,
        settings: Settings,
        model: str = "sentiment",
        *,
        alerting: str = "auto",  # auto | prometheus | evaluator | none
        say: Callable[[str], None] | None = None,
        repeat_interval: str = "30s",
    ) -> None:
        self.say = say or (lambda message: None)
        super().__init__(settings, model, alerting=alerting, repeat_interval=repeat_interval)
        self._processes: dict[str, subprocess.Popen] = {}
        self._restarts: dict[str, int] = {}

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
        private_dir(self.dir)
        env = {**self.child_env(), **service.env}
        # a backend URI on the command line may carry a password: never write it out
        shown_argv = [mask_secrets(part) for part in service.argv]
        with open_private(self.log_file(service.name), "ab") as log:
            log.write(
                f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {shown_argv}\n".encode()
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
            "argv": shown_argv,
            "started_at": time.time(),
        }
        write_private(self.pid_file(service.name), json.dumps(record))
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
        private_dir(self.dir)
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

    def uptime_s(self) -> float:
        """Seconds since the oldest process of the stack still recorded was started (0: none)."""
        started = [p.stat().st_mtime for p in self.dir.glob("*.pid") if p.is_file()]
        return max(time.time() - min(started), 0.0) if started else 0.0

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
