"""Smoke-serve: run this predictor on a model version and prove it answers, before the gate.

First the model's runtime is checked against this environment -- the one
``driftloop serve`` runs in, the predictor's image on a cluster: every pip
requirement the model was logged with must be installed at a version it
accepts, and the model's Python must be this minor version. A mismatch fails
here, naming the requirement, before any alias moves (a model that merely
warns at load time would otherwise serve with another library than it was
trained with). Then it starts ``driftloop serve`` in a separate process on free loopback ports
(its own throwaway prediction store, no payload logger, no reload polling) -- forked from
this one when kserve is already imported here (the warm step host's child: a cold Python
spends most of the step importing kserve), else a fresh Python -- waits for
readiness (bounded), sends the samples (v1 instances) over REST v2 -- built from
the served model's own input metadata -- and REST v1, checks both answers are
well-formed and agree, stops the server and reports latency.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from driftloop.ports import free_ports
from driftloop.serving.client import PredictorClient, PredictorError

SERVE_ENTRY = "import sys; from driftloop.cli import main; sys.exit(main())"


class SmokeServeError(RuntimeError):
    """The model could not be served: cannot load, bad answer, or timeout."""


class RuntimeMismatchError(SmokeServeError):
    """The model needs a runtime (a distribution, a version, a Python) this environment lacks."""


def requirement_mismatches(requirements: list[str]) -> list[str]:
    """What of ``requirements`` (pip lines) this environment does not satisfy, one phrase each.

    Lines pip understands but that name no distribution (options, URLs, paths) are
    not checked; a requirement whose marker excludes this platform is skipped.
    """
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    for line in requirements:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.url or (requirement.marker and not requirement.marker.evaluate()):
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{text} (not installed)")
            continue
        if requirement.specifier and not requirement.specifier.contains(
            installed, prereleases=True
        ):
            problems.append(f"{text} (installed: {requirement.name} {installed})")
    return problems


def check_runtime(model_uri: str) -> dict:
    """Raise RuntimeMismatchError unless this environment can run ``model_uri``;
    returns what was checked ({"python", "requirements"})."""
    import mlflow.pyfunc
    from mlflow.models import get_model_info

    try:
        flavour = get_model_info(model_uri).flavors.get("python_function", {})
        requirements_path = mlflow.pyfunc.get_model_dependencies(model_uri, format="pip")
    except Exception as exc:  # noqa: BLE001 - any registry/artifact failure is "cannot load"
        raise SmokeServeError(f"cannot load: {model_uri}: {exc}") from exc
    requirements = Path(requirements_path).read_text(encoding="utf-8").splitlines()
    problems = requirement_mismatches(requirements)
    logged_python = str(flavour.get("python_version") or "")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if logged_python and ".".join(logged_python.split(".")[:2]) != here:
        problems.append(f"python {logged_python} (this environment: python {here})")
    if problems:
        raise RuntimeMismatchError(
            f"runtime mismatch: {model_uri} needs what the serving environment lacks: "
            + "; ".join(problems)
        )
    return {"python": logged_python, "requirements": len(requirements)}


def _load_failure(log_text: str) -> str:
    """The most telling line of a predictor that died while loading the model."""
    missing = re.findall(r"No module named '([^']+)'", log_text)
    if missing:
        return (
            f"runtime mismatch: the model needs module {missing[-1]!r}, "
            "which the serving environment lacks"
        )
    return ""


def _model_name(model_uri: str) -> str:
    match = re.match(r"^models:/([^/@]+)", model_uri)
    return match.group(1) if match else "smoke"


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class _ForkedServer:
    """A ``driftloop serve`` forked from this process, with what :class:`subprocess.Popen`
    offers that the smoke test uses (poll, returncode, send_signal, wait, kill)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"driftloop serve (pid {self.pid})", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _warm() -> bool:
    """A step host's child with kserve and driftloop's server imported already: forking a
    server is cheaper than a fresh Python importing them (seconds). Anywhere else (a test
    runner, a notebook) the process may hold threads, an event loop or replaced std streams
    that a fork would carry into the server, so a fresh Python starts it."""
    from driftloop.step_host import in_step

    return hasattr(os, "fork") and in_step() and "driftloop.serving.server" in sys.modules


# run by a fresh interpreter with the server's environment: its sys.path, and which of
# the top-level modules given on stdin it would import from the same file as this process
_FRESH_VIEW = """
import importlib.util, json, sys
loaded = json.load(sys.stdin)
same = []
for name, origin in loaded.items():
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        continue
    # frozen/built-in: the interpreter's own (their __file__ is the source they froze)
    if spec is not None and spec.origin in (origin, "frozen", "built-in"):
        same.append(name)
print(json.dumps({"path": sys.path, "same": same}))
"""


def _fresh_view(env: dict[str, str]) -> tuple[list[str], set[str]]:
    """What a fresh ``python -c`` started with ``env`` here would see: its sys.path, and
    the top-level modules loaded in this process that it would find at the same file."""
    origins = {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if "." not in name and getattr(module, "__file__", None)
    }
    answer = subprocess.run(
        [sys.executable, "-c", _FRESH_VIEW],
        input=json.dumps(origins),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    view = json.loads(answer.stdout)
    return view["path"], set(view["same"])


def _forget_what_a_fresh_python_lacks(fresh_path: list[str], same: set[str]) -> None:
    """Make this (forked) process import like a fresh interpreter: its sys.path, and no
    module loaded from somewhere that interpreter would not look (the parent's own
    sys.path entries, a PYTHONPATH the server's environment does not have) -- a model
    that needs such a module must fail to load here as it would in a pod."""
    sys.path[:] = fresh_path
    for name in list(sys.modules):
        module = sys.modules[name]
        top = name.partition(".")[0]
        if (
            top in same
            or top == "__main__"
            or not getattr(sys.modules.get(top, module), "__file__", None)
        ):
            continue  # found at the same file, the running program, or built in
        del sys.modules[name]
    importlib.invalidate_caches()


def _fork_server(arguments: list[str], env: dict[str, str], log_path: Path) -> _ForkedServer:
    """``driftloop serve arguments`` in a forked child: its own process, environment, log,
    signal handling and import view, the same code a fresh interpreter would run."""
    fresh_path, same = _fresh_view(env)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid:
        return _ForkedServer(pid)
    code = 1
    try:
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(env)
        _forget_what_a_fresh_python_lacks(fresh_path, same)
        # settings read from the environment and cached by this process's parent
        settings = sys.modules.get("driftloop.settings")
        if settings is not None:
            settings.get_settings.cache_clear()
        from driftloop.cli import main

        code = main(arguments)
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the log says why; the parent sees the exit status
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def smoke_serve(model_uri: str, samples: list[Any], timeout_s: float = 120.0) -> dict:
    """Serve ``model_uri`` briefly and check its answers; returns {ok, latency_ms, predictions}."""
    if not samples:
        raise SmokeServeError("no sample inputs to send")
    runtime = check_runtime(model_uri)
    name = _model_name(model_uri)
    http_port, grpc_port = free_ports(2)
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryDirectory(prefix="driftloop-smoke-") as tmp:
        log_path = Path(tmp) / "server.log"
        env = dict(os.environ)
        for variable in ("DRIFTLOOP_API_TOKEN", "DRIFTLOOP_LOGGER_URL"):
            env.pop(variable, None)
        env["DRIFTLOOP_STORE_URL"] = f"sqlite:///{Path(tmp) / 'smoke-store.db'}"
        env["DRIFTLOOP_RELOAD_INTERVAL_S"] = "0"
        arguments = [
            "serve",
            name,
            "--model-uri",
            model_uri,
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
        ]
        started_by = "fork" if _warm() else "python"
        if started_by == "fork":
            process = _fork_server(arguments, env, log_path)
        else:
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-c", SERVE_ENTRY, *arguments],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
        try:
            _wait_ready(process, name, http_port, deadline, log_path)
            answers = _exercise(name, http_port, samples, deadline)
            return answers | {"runtime": runtime, "server_started_by": started_by}
        finally:
            _stop(process)


def _wait_ready(process, name, port, deadline, log_path) -> None:  # noqa: ANN001
    url = f"http://127.0.0.1:{port}/v2/models/{name}/ready"
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = _tail(log_path)
                mismatch = _load_failure(tail)
                error = RuntimeMismatchError if mismatch else SmokeServeError
                raise error(
                    f"cannot load: {mismatch + ': ' if mismatch else ''}predictor exited with "
                    f"status {process.returncode}: {tail}"
                )
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    raise SmokeServeError(f"timeout: predictor not ready on port {port}: {_tail(log_path)}")


def _agree(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_agree(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))
    return a == b


def _exercise(name: str, port: int, samples: list[Any], deadline: float) -> dict:
    remaining = max(deadline - time.monotonic(), 1.0)
    with PredictorClient(f"http://127.0.0.1:{port}", timeout_s=min(remaining, 30.0)) as client:
        try:
            started = time.perf_counter()
            v2 = client.predict_v2(name, samples)
            latency_ms = (time.perf_counter() - started) * 1000.0
            v1 = client.predict_v1(name, samples)
        except PredictorError as exc:
            raise SmokeServeError(f"bad answer: {exc}") from exc
    for index, (a, b) in enumerate(zip(v2, v1, strict=True)):
        probabilities = b.output.get("probabilities")
        if probabilities is not None and abs(sum(probabilities.values()) - 1.0) > 1e-3:
            raise SmokeServeError(f"bad answer: probabilities of sample {index} do not sum to 1")
        if not _agree(a.output, b.output):
            raise SmokeServeError(
                f"bad answer: v1/v2 disagree on sample {index}: {a.output} vs {b.output}"
            )
    return {
        "ok": True,
        "latency_ms": round(latency_ms, 3),
        "model_version": v2[0].model_version,
        "predictions": [p.output for p in v1],
    }
