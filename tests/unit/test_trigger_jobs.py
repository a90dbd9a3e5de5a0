"""Small real functions the trigger's LocalLauncher runs in a worker process.

They stand in for the retraining pipeline where the policy, not the training,
is under test: the launcher resolves them from an import string exactly as it
resolves ``pipelines.retraining:retraining_pipeline``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def release_path(run_id: str) -> Path:
    return Path(os.environ["DRIFTLOOP_HOME"]) / f"release-{run_id}"


def held_job(model_name: str, reason: str, trigger_run_id: str) -> dict:
    """Runs until the test releases it (bounded), then reports what it was given."""
    deadline = time.monotonic() + 30
    while not release_path(trigger_run_id).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.05)
    return {"model": model_name, "reason": reason, "pid": os.getpid()}


def quick_job(model_name: str, reason: str) -> dict:
    return {"model": model_name, "reason": reason, "pid": os.getpid()}


def failing_job(model_name: str) -> dict:
    raise ValueError(f"training data for {model_name} is empty")


def test_quick_job_reports_its_inputs():
    assert quick_job("m", "DriftDetected")["model"] == "m"
