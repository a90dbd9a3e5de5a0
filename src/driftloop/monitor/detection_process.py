"""Featurise and test drift windows in a child process of the monitor.

Featurising a window is mostly Python (a text featuriser tokenises every
text) and holds the GIL for tens of milliseconds. In the monitor's own process
that starves the event loop taking events: each time the loop gives up the GIL
for a socket call it can wait a whole switch interval to get it back, and
intake falls to a fraction of what it takes without detection running. A
child process has a GIL of its own; the engine's worker thread sends it each
window and waits on the pipe (without the GIL) for the detector results.

The child gets a version's reference bundle once, pickled, when the engine
starts watching it (:meth:`DetectionProcess.prepare`), and keeps the
detectors' state between windows (online detectors need it). It is started
with ``spawn`` (the monitor has threads running; forking them is unsafe), ignores
Ctrl-C (the monitor stops it), exits when the monitor closes the pipe or dies,
and is started again, with the bundle sent again, if it dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from driftloop.monitor.detectors import DetectorResult

log = logging.getLogger(__name__)

STOP_WAIT_S = 2.0  # within the monitor's own stop budget (a supervisor's SIGKILL)


class DetectionFailed(RuntimeError):
    """The child could not test a window; the message says why."""


class DetectionProcess:
    """A window evaluator for :class:`~driftloop.monitor.engine.DriftEngine` in a child process."""

    def __init__(self, name: str = "drift-detection") -> None:
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None  # a multiprocessing (spawn) Process
        self._connection: Connection | None = None
        self._sent_generation: int | None = None
        self._lock = threading.Lock()  # one exchange with the child at a time
        self._stopping = threading.Event()  # a stop: waits on the child give up at once

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def ready_for(self, generation: int) -> bool:
        """Whether the child holds the bundle of ``generation`` (and can test its windows)."""
        return self._sent_generation == generation

    def prepare(self, generation: int, bundle: Any) -> None:
        """Send the reference bundle of ``generation`` ahead of its first window."""
        with self._lock:
            self._send_bundle(generation, bundle)

    def __call__(
        self, generation: int, bundle: Any, model_input: object, outputs: list[dict]
    ) -> list[DetectorResult]:
        with self._lock:
            self._send_bundle(generation, bundle)
            connection = self._connection
            assert connection is not None
            try:
                connection.send(("window", pickle.dumps((model_input, outputs), protocol=5)))
                kind, payload = self._receive(connection)
            except (EOFError, OSError) as exc:
                self._forget()
                raise DetectionFailed(f"the detection process exited ({exc!r})") from None
        if kind == "error":
            raise DetectionFailed(payload)
        return payload

    def stop_waiting(self) -> None:
        """Make a wait on the child (a window, a reference loading) give up now."""
        self._stopping.set()

    def close(self, timeout: float = STOP_WAIT_S) -> None:
        self.stop_waiting()
        with self._lock:  # any exchange in progress has given up
            process, connection = self._process, self._connection
            self._forget()
        if process is None:
            return
        try:
            if connection is not None:
                connection.send(("stop", None))
        except OSError:
            pass
        process.join(timeout)
        if process.is_alive():
            log.warning("%s: the detection process did not stop; killing it", self.name)
            process.kill()
            process.join(timeout)
        if connection is not None:
            connection.close()

    # --- under the lock ------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._stopping.is_set():
            raise DetectionFailed("the monitor is stopping")
        if self._process is not None and self._process.is_alive():
            return
        if self._process is not None:
            log.warning(
                "%s: the detection process exited (status %s); starting another",
                self.name,
                self._process.exitcode,
            )
            self._forget()
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=serve, args=(child,), name=f"{self.name}-process", daemon=True
        )
        process.start()
        child.close()
        self._process, self._connection = process, parent
        log.info("%s: detection process %d started", self.name, process.pid)

    def _send_bundle(self, generation: int, bundle: Any) -> None:
        self._ensure_started()
        if self._sent_generation == generation:
            return
        assert self._connection is not None
        try:
            self._connection.send(("reference", pickle.dumps(bundle, protocol=5)))
            # unpickling imports the detectors' libraries: seconds on a busy machine
            _, problem = self._receive(self._connection)
        except (EOFError, OSError) as exc:
            self._forget()
            raise DetectionFailed(f"the detection process exited ({exc!r})") from None
        self._sent_generation = generation
        if problem:
            raise DetectionFailed(problem)

    def _receive(self, connection: Connection) -> tuple:
        while not connection.poll(0.1):
            if self._stopping.is_set():
                raise DetectionFailed("the monitor is stopping")
            if self._process is not None and not self._process.is_alive():
                raise EOFError("the detection process died")
        return connection.recv()

    def _forget(self) -> None:
        self._process, self._connection, self._sent_generation = None, None, None


def serve(connection: Connection) -> None:
    """The child: take a bundle, then windows, answer each with the detectors' results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the monitor stops this process itself
    from driftloop.monitor.engine import evaluate_here

    bundle = None
    problem = "no drift reference was sent"
    while True:
        try:
            kind, payload = connection.recv()
        except (EOFError, OSError):
            return  # the monitor went away
        if kind == "stop":
            # nothing to flush; tearing down an interpreter with torch loaded takes seconds
            os._exit(0)
        if kind == "reference":
            try:
                bundle, problem = pickle.loads(payload), ""
            except Exception as exc:  # reported now and with every window
                bundle, problem = None, f"cannot load the drift reference: {exc!r}"
            try:
                connection.send(("ready", problem))
            except OSError:
                return
            continue
        try:
            if bundle is None:
                raise DetectionFailed(problem)
            model_input, outputs = pickle.loads(payload)
            answer = ("results", evaluate_here(0, bundle, model_input, outputs))
        except Exception as exc:
            answer = ("error", f"{type(exc).__name__}: {exc}")
        try:
            connection.send(answer)
        except OSError:
            return
