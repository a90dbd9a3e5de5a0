"""MLServer 1.7.1 + mlserver-mlflow serving the same MLflow model folder (the MLServer baseline).

MLServer lives in its own virtualenv (``scripts/setup-mlserver.sh`` →
``.venv-mlserver``) because its fastapi/numpy pins clash with ours. The model
repository written here holds one ``model-settings.json`` pointing the MLflow
runtime at the downloaded model folder, with MLServer's adaptive batching on
(``max_batch_size`` instances, ``max_batch_time`` seconds: the same limits as
driftloop's predictor is measured with); MLServer's other defaults are kept
(``parallel_workers`` = 1 inference process) except ports, host and metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
# mlserver-mlflow cannot encode the text classifier's pyfunc output (bench.mlserver_runtime)
TEXT_RUNTIME = "bench.mlserver_runtime.TextClassifierRuntime"
MLSERVER_VENV = Path(os.environ.get("BENCH_MLSERVER_VENV", REPO_ROOT / ".venv-mlserver"))


def mlserver_binary() -> Path:
    return MLSERVER_VENV / "bin" / "mlserver"


def ensure_mlserver(log: Path) -> str | None:
    """Create or update the MLServer venv; return why it cannot be used, or None when ready.

    The script is idempotent (a stamp holds the spec it installed), so this is
    a couple of seconds when the environment is already right.
    """
    script = REPO_ROOT / "scripts" / "setup-mlserver.sh"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        done = subprocess.run(
            ["bash", str(script), str(MLSERVER_VENV)],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text()[-500:].strip().splitlines()
        return f"scripts/setup-mlserver.sh failed ({done.returncode}): {tail[-1] if tail else ''}"
    return None


def write_repository(
    root: Path,
    model_name: str,
    model_dir: Path,
    *,
    http_port: int,
    grpc_port: int,
    max_batch_size: int = 1,
    max_batch_time_ms: float = 0.0,
    implementation: str = "mlserver_mlflow.MLflowRuntime",
) -> Path:
    """An MLServer model repository serving ``model_dir`` as ``model_name`` with the runtime
    ``implementation`` (``TEXT_RUNTIME`` for text classifiers); adaptive batching on when
    ``max_batch_size`` > 1."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": free_port(),
                "debug": False,
            }
        )
    )
    model_root = root / model_name
    model_root.mkdir(exist_ok=True)
    (model_root / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model_name,
                "implementation": implementation,
                "parameters": {"uri": str(model_dir)},
                "max_batch_size": max_batch_size,
                "max_batch_time": max_batch_time_ms / 1000.0,
            }
        )
    )
    return root


def command(repository: Path) -> list[str]:
    return [str(mlserver_binary()), "start", str(repository)]


def environment(base: dict[str, str]) -> dict[str, str]:
    """MLServer's own interpreter must not see driftloop's venv, only driftloop's source.

    The sentiment pipeline pickles driftloop's text normaliser, so unpickling
    needs ``driftloop.blueprints.text`` importable: the source tree goes on
    PYTHONPATH (pure Python; its imports are numpy/pandas/sklearn, all present).
    """
    env = {k: v for k, v in base.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{MLSERVER_VENV / 'bin'}{os.pathsep}{base.get('PATH', '')}"
    # the repository root too: MLServer's workers import bench.mlserver_runtime
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])
    return env
