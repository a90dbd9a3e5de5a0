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


class _Inputs:
    inputs = {"model_name": None, "reason": None}


class FakeKfpPipeline:
    """Looks like a ``@dsl.pipeline`` to the worker: it has a ``component_spec``."""

    component_spec = _Inputs()


fake_kfp_pipeline = FakeKfpPipeline()


def recording_runner(pipeline, arguments: dict, settings) -> dict:
    """Stands in for ``pipelines.local_run:run_pipeline_locally`` (settings.retrain_runner)."""
    return {"ran": type(pipeline).__name__, "arguments": arguments, "home": str(settings.home)}


def test_quick_job_reports_its_inputs():
    assert quick_job("m", "DriftDetected")["model"] == "m"
