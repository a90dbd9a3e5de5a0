"""Smoke-serve: run this predictor on a model version and prove it answers, before the gate.

Starts ``driftloop serve`` in a subprocess on free loopback ports (its own
throwaway prediction store, no payload logger, no reload polling), waits for
readiness (bounded), sends the samples -- v1 instances, one ``{input: value}``
object each -- over REST v1 and, built from the served model's own input
metadata, over REST v2; checks both answers are well-formed and agree, stops
the server and reports latency.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from driftloop.ports import free_ports

SERVE_ENTRY = "import sys; from driftloop.cli import main; sys.exit(main())"


class SmokeServeError(RuntimeError):
    """The model could not be served: cannot load, bad answer, or timeout."""


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


def smoke_serve(model_uri: str, samples: list[dict], timeout_s: float = 120.0) -> dict:
    """Serve ``model_uri`` briefly and check its answers; returns {ok, latency_ms, predictions}."""
    if not samples:
        raise SmokeServeError("no sample inputs to send")
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
        command = [
            sys.executable,
            "-c",
            SERVE_ENTRY,
            "serve",
            name,
            "--model-uri",
            model_uri,
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
        ]
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_ready(process, name, http_port, deadline, log_path)
            return _exercise(name, http_port, samples, deadline)
        finally:
            _stop(process)


def _wait_ready(process, name, port, deadline, log_path) -> None:  # noqa: ANN001
    url = f"http://127.0.0.1:{port}/v2/models/{name}/ready"
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SmokeServeError(
                    f"cannot load: predictor exited with status {process.returncode}: "
                    f"{_tail(log_path)}"
                )
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    raise SmokeServeError(f"timeout: predictor not ready on port {port}: {_tail(log_path)}")


def _v2_request(metadata: dict, samples: list[dict]) -> dict:
    inputs = []
    for spec in metadata.get("inputs", []):
        data = [sample.get(spec["name"]) for sample in samples]
        inputs.append(
            {"name": spec["name"], "datatype": spec["datatype"], "shape": [len(data)], "data": data}
        )
    return {"inputs": inputs}


def _v2_instances(body: dict) -> list[dict]:
    """Per-instance values of the v2 outputs that are one value per instance."""
    outputs = body.get("outputs", [])
    n = max((o["shape"][0] for o in outputs if o.get("shape")), default=0)
    instances: list[dict] = [{} for _ in range(n)]
    for output in outputs:
        if list(output.get("shape", [])) == [n]:
            for instance, value in zip(instances, output["data"], strict=True):
                instance[output["name"]] = value
    return instances


def _agree(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))
    return a == b


def _exercise(name: str, port: int, samples: list[dict], deadline: float) -> dict:
    remaining = max(deadline - time.monotonic(), 1.0)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=min(remaining, 30.0)) as http:
        try:
            metadata = http.get(f"{base}/v2/models/{name}").raise_for_status().json()
            started = time.perf_counter()
            v2 = http.post(f"{base}/v2/models/{name}/infer", json=_v2_request(metadata, samples))
            latency_ms = (time.perf_counter() - started) * 1000.0
            v1 = http.post(f"{base}/v1/models/{name}:predict", json={"instances": samples})
        except httpx.HTTPError as exc:
            raise SmokeServeError(f"bad answer: {exc}") from exc
    for protocol, response in (("v2", v2), ("v1", v1)):
        if response.status_code != 200:
            raise SmokeServeError(
                f"bad answer: {protocol} status {response.status_code}: {response.text[:300]}"
            )
    v2_body, v1_predictions = v2.json(), v1.json().get("predictions", [])
    v2_instances = _v2_instances(v2_body)
    if len(v1_predictions) != len(samples) or len(v2_instances) != len(samples):
        raise SmokeServeError(
            f"bad answer: {len(samples)} samples, {len(v1_predictions)} v1 and "
            f"{len(v2_instances)} v2 predictions"
        )
    for index, (a, b) in enumerate(zip(v2_instances, v1_predictions, strict=True)):
        probabilities = b.get("probabilities")
        if probabilities is not None and abs(sum(probabilities.values()) - 1.0) > 1e-3:
            raise SmokeServeError(f"bad answer: probabilities of sample {index} do not sum to 1")
        shared = [key for key in a if key in b]
        if not shared or not all(_agree(a[key], b[key]) for key in shared):
            raise SmokeServeError(f"bad answer: v1/v2 disagree on sample {index}: {a} vs {b}")
    return {
        "ok": True,
        "latency_ms": round(latency_ms, 3),
        "model_version": v2_body.get("model_version"),
        "predictions": v1_predictions,
    }
