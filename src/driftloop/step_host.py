"""A warm process that pipeline steps run in, so each step does not import the stack again.

kfp.local's ``SubprocessRunner`` starts a fresh Python for every task: each
driftloop step then spends seconds importing MLflow, pandas, scikit-learn (and
alibi-detect for the drift reference) before it does a few hundred
milliseconds of work. A step host imports those once, then forks a child per
step: the child starts with everything imported, runs the step's function with
the task process's environment, working directory, stdout and stderr, and
sends the return value (or the exception) back. The task process stays what
kfp.local started -- it waits for the answer, so task status, logs, outputs and
caching are kfp.local's as before.

:func:`run_step` is what a component body calls. Without a host (a cluster pod,
or ``DRIFTLOOP_STEP_HOST`` unset) it imports the function and calls it in the
task process, exactly as a plain component would. This module imports only the
standard library: it is the one import every task process pays.

The socket lives in a private (0700) directory and is only reachable by the
same user, who could run the same code directly anyway; requests are pickles.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ENV_VAR = "DRIFTLOOP_STEP_HOST"
SOCKET_NAME = "steps.sock"
_HEADER = struct.Struct("!Q")
_STD_FDS = (1, 2)

log = logging.getLogger(__name__)
# set in a host's child: what a step may fork from is then a clean, single-threaded host
_IN_STEP = False

# What the steps import, in the order the retraining pipeline first needs them
# (rollback: the registry; ingest...split: the data steps; train; evaluate with
# its importance plot; register; smoke-serve and the predictor it forks; the gate;
# the drift reference: alibi-detect, ~8 s on its own, last). A module missing here
# is imported by the child that needs it.
DEFAULT_PRELOAD: tuple[str, ...] = (
    "pandas",
    "mlflow",
    "driftloop.registry",
    "driftloop.deploy",
    "driftloop.promotion",
    "driftloop.blueprints",
    "driftloop.training.data_steps",
    "driftloop.steps",
    "driftloop.training.candidates",
    "driftloop.training.model_logging",
    "driftloop.training.evaluate",
    "driftloop.training.explain",
    "driftloop.training.candidate_plot",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "driftloop.training.gate",
    "driftloop.serving.smoke",
    # smoke-serve forks its predictor from the step's child when these are loaded (a
    # fresh Python spent ~10 s of the step importing kserve)
    "driftloop.cli.serve",
    "driftloop.serving.server",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "driftloop.monitor.reference",
    "alibi_detect.cd",
    "alibi_detect.saving",
)
# "blueprint:<spec>" in a preload list builds that blueprint once (imports its module)
BLUEPRINT_PREFIX = "blueprint:"


def preload_for(blueprint: str | None = None) -> list[str]:
    """:data:`DEFAULT_PRELOAD`, with ``blueprint``'s own module right after the blueprints."""
    modules = list(DEFAULT_PRELOAD)
    if blueprint:
        modules.insert(modules.index("driftloop.blueprints") + 1, BLUEPRINT_PREFIX + blueprint)
    return modules


class StepHostError(RuntimeError):
    """The host took the step but its child ended without an answer."""


# --- the calling side (a task process) -------------------------------------------------
def resolve(target: str) -> Any:
    """``"package.module:function"`` -> the function."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"step target must look like 'module:function', got {target!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def run_step(target: str, *args: Any, **kwargs: Any) -> Any:
    """``target(*args, **kwargs)``: in a child of the step host when one is configured
    and answering, else right here. Returns what it returns; raises what it raises."""
    path = os.environ.get(ENV_VAR, "")
    connection = _connect(path) if path else None
    if connection is None:
        return resolve(target)(*args, **kwargs)
    with connection:
        return _call_remote(connection, target, args, kwargs)


def _connect(path: str) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
    except OSError as exc:
        client.close()
        # a host that went away is not an error: the step runs here, only slower
        print(f"driftloop step host {path} not reachable ({exc}); running in-process", flush=True)
        return None
    return client


def _call_remote(connection: socket.socket, target: str, args: tuple, kwargs: dict) -> Any:
    request = {
        "target": target,
        "args": args,
        "kwargs": kwargs,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "argv": list(sys.argv),
    }
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    payload = pickle.dumps(request)
    # the child writes straight into this process's stdout/stderr (the task log)
    socket.send_fds(connection, [_HEADER.pack(len(payload))], list(_STD_FDS))
    connection.sendall(payload)
    answer = _receive(connection)
    if answer is None:
        raise StepHostError(f"step {target}: the step host's child ended without an answer")
    if answer["ok"]:
        return answer["value"]
    error = answer["error"]
    if not isinstance(error, BaseException):
        raise StepHostError(f"step {target} failed:\n{answer['traceback']}")
    error.add_note(f"raised in the step host's child:\n{answer['traceback']}")
    raise error


def _receive(connection: socket.socket) -> Any:
    header = _read_exactly(connection, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(connection, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def _read_exactly(connection: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(connection: socket.socket, value: Any) -> None:
    body = pickle.dumps(value)
    connection.sendall(_HEADER.pack(len(body)) + body)


# --- the host ----------------------------------------------------------------------------
def preload(modules: Iterable[str]) -> dict[str, str]:
    """Import ``modules``; returns the ones that failed and why (the child retries them)."""
    failed = {}
    for name in modules:
        try:
            if name.startswith(BLUEPRINT_PREFIX):
                from driftloop.blueprints import get_blueprint

                get_blueprint(name.removeprefix(BLUEPRINT_PREFIX))
            else:
                importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - an optional extra missing here is fine
            failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


def serve(path: str, modules: Sequence[str], parent_pid: int | None = None) -> None:
    """Listen on ``path`` and fork a child per step until stopped, importing ``modules``
    one at a time in between.

    The socket listens before any import, and the imports are staged: a step
    that arrives while the host is still warming up waits at most for the
    module being imported, then runs with what is loaded so far (the rest it
    imports itself). Forking happens only between imports, from the one
    thread there is, so a child never inherits a half-done import. The host
    ends on SIGTERM/SIGINT or when ``parent_pid`` (whoever started it) is gone.
    """
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # bound and listening under another name first: the path appears (atomically) only
    # once a connect to it succeeds, so no caller finds it and falls back in between
    binding = f"{path}.{os.getpid()}"
    server.bind(binding)
    os.chmod(binding, 0o600)
    server.listen(16)
    os.replace(binding, path)
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pending = list(modules)
    started = time.monotonic()
    children: set[int] = set()
    try:
        while not stopping:
            _reap(children)
            if parent_pid is not None and os.getppid() != parent_pid:
                break  # orphaned: whoever started the host is gone
            # while warming up, only look for a waiting step; then wait a quarter second at a time
            server.settimeout(0.0 if pending else 0.25)
            try:
                connection, _ = server.accept()
            except (BlockingIOError, TimeoutError, InterruptedError):
                connection = None
            if connection is not None:
                pid = os.fork()
                if pid == 0:  # the child: never returns
                    server.close()
                    _child(connection)
                children.add(pid)
                connection.close()
            elif pending:
                name = pending.pop(0)
                failed = preload([name])
                for why in failed.values():
                    print(f"step host: not preloaded {name} ({why})", flush=True)
                if not pending:
                    print(
                        f"step host ready: {len(modules)} modules in "
                        f"{time.monotonic() - started:.1f}s, {threading.active_count()} thread(s)",
                        flush=True,
                    )
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        # children are steps in flight: their task processes see them fail if they stop
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        _reap(children, block_s=10.0)


def _reap(children: set[int], block_s: float = 0.0) -> None:
    deadline = time.monotonic() + block_s
    for pid in list(children):
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if done:
            children.discard(pid)


def in_step() -> bool:
    """Whether this process is a step host's child running a step (forked from the host)."""
    return _IN_STEP


def _mark_in_step() -> None:
    global _IN_STEP
    _IN_STEP = True
    # the host runs as ``python -m driftloop.step_host`` (module __main__): what steps import
    # is driftloop.step_host, a second module object
    importlib.import_module("driftloop.step_host")._IN_STEP = True


def _child(connection: socket.socket) -> None:
    _mark_in_step()
    code = 1
    try:
        # its own process group: when the caller goes away, everything the step started
        # (a pipeline's task processes, a predictor) is stopped with it
        os.setsid()
        # a stopped step unwinds (finally blocks stop what it started: smoke-serve's server)
        signal.signal(signal.SIGTERM, _exit_on_signal)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        connection.settimeout(None)
        header, fds, _, _ = socket.recv_fds(connection, _HEADER.size, len(_STD_FDS))
        body = _read_exactly(connection, _HEADER.unpack(header)[0]) if header else None
        if body is None or len(fds) != len(_STD_FDS):
            os._exit(2)
        request = pickle.loads(body)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for received, standard in zip(fds, _STD_FDS, strict=True):
            os.dup2(received, standard)
            os.close(received)
        os.environ.clear()
        os.environ.update(request["env"])
        _forget_environment_caches()
        os.chdir(request["cwd"])
        sys.argv = request["argv"]
        finished = threading.Event()
        _watch_caller(connection, finished)
        try:
            value = resolve(request["target"])(*request["args"], **request["kwargs"])
            answer = {"ok": True, "value": value}
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the caller
            answer = {"ok": False, "error": _portable(exc), "traceback": traceback.format_exc()}
        finished.set()
        try:
            _send(connection, answer)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            # an exception (or value) that does not pickle: its text still does
            text = answer.get("traceback") or f"the step's return value does not pickle: {exc}"
            _send(connection, {"ok": False, "error": None, "traceback": text})
        code = 0
        # what a normal interpreter exit runs (MLflow ends a run left open, logging flushes)
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _portable(error: BaseException) -> BaseException | None:
    """``error`` if it survives a pickle round trip (an exception whose constructor takes
    other arguments than it keeps does not), else None: the caller gets its traceback."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure means: send the text only
        return None
    return error


def _forget_environment_caches() -> None:
    """Settings read from the environment once and cached: the host may have built them
    with its own environment (a blueprint preloaded), the step must see the task's."""
    settings = sys.modules.get("driftloop.settings")
    if settings is not None:
        settings.get_settings.cache_clear()


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _watch_caller(connection: socket.socket, finished: threading.Event) -> None:
    """Interrupt the step when its task process goes away (a stopped run): the task
    sends nothing after its request, so the only thing ``recv`` can see is the close."""

    def watch() -> None:
        try:
            connection.recv(1)
        except OSError:
            pass
        if not finished.is_set():
            os.killpg(os.getpgid(0), signal.SIGTERM)

    threading.Thread(target=watch, name="step-caller-watch", daemon=True).start()


# --- starting and stopping a host ------------------------------------------------------
class StepHost:
    """A host process started by this one (:meth:`start`), stopped by :meth:`stop`."""

    def __init__(self, process: subprocess.Popen, directory: Path) -> None:
        self.process = process
        self.directory = directory

    @property
    def socket_path(self) -> str:
        return str(self.directory / SOCKET_NAME)

    @classmethod
    def start(
        cls,
        modules: Sequence[str] = DEFAULT_PRELOAD,
        *,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> StepHost:
        # a short private path: AF_UNIX paths stop at 107 bytes, run folders can be longer
        directory = Path(tempfile.mkdtemp(prefix="driftloop-steps-"))
        command = [
            sys.executable,
            "-m",
            "driftloop.step_host",
            str(directory / SOCKET_NAME),
            "--parent",
            str(os.getpid()),
            *modules,
        ]
        output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            if log_path:
                output.close()
        host = cls(process, directory)
        host.wait_listening()
        return host

    def wait_listening(self, timeout_s: float = 30.0) -> None:
        """Until the socket exists (it is listening once it does, before any import), so no
        step falls back."""
        deadline = time.monotonic() + timeout_s
        while not Path(self.socket_path).exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StepHostError(
                    f"step host did not start listening (exit status {self.process.poll()})"
                )
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        with contextlib.suppress(OSError):
            for path in self.directory.iterdir():
                path.unlink()
            self.directory.rmdir()


def host_in_environment() -> str | None:
    """The socket of a host this process's environment names, if it answers."""
    path = os.environ.get(ENV_VAR, "")
    if not path:
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return None
    finally:
        probe.close()
    return path


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: python -m driftloop.step_host SOCKET [--parent PID] [MODULE...]")
        return 2
    path, rest = argv[0], argv[1:]
    parent = None
    if rest[:1] == ["--parent"]:
        parent, rest = int(rest[1]), rest[2:]
    serve(path, rest, parent_pid=parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
