"""Held-out evaluation of a trained model, recorded on its training run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.blueprints import Blueprint, get_blueprint
from driftloop.datasets.files import read_frame
from driftloop.datasets.fingerprint import frame_fingerprint
from driftloop.lineage import TAG_TEST_FINGERPRINT
from driftloop.settings import Settings

TEST_PREFIX = "test_"


def evaluate(blueprint: Blueprint | str, model: Any, test: pd.DataFrame) -> dict[str, float]:
    """The blueprint's metrics of ``model`` on ``test`` (keys unprefixed, e.g. "macro_f1")."""
    blueprint = get_blueprint(blueprint)
    target = blueprint.target_column  # None: an unsupervised task scores the features alone
    if target is not None and target not in test.columns:
        raise ValueError(f"test frame lacks the target column {blueprint.target_column!r}")
    return blueprint.score(model, test)


def evaluate_run(
    run_id: str,
    test_path: str | Path,
    blueprint: Blueprint | str,
    *,
    settings: Settings | None = None,
    artifact_path: str = "model",
) -> dict[str, float]:
    """Score ``runs:/<run_id>/model`` on the test file; log ``test_*`` metrics and the
    global importance (``explanations/``) on the run."""
    import mlflow
    from mlflow.entities import Metric

    from driftloop.training.candidates import use_tracking
    from driftloop.training.explain import log_global_importance
    from driftloop.training.model_logging import load_native

    use_tracking(settings)
    test = read_frame(test_path)
    model = load_native(f"runs:/{run_id}/{artifact_path}")
    metrics = evaluate(blueprint, model, test)
    now = int(time.time() * 1000)
    client = mlflow.MlflowClient()
    client.log_batch(
        run_id,
        metrics=[
            Metric(f"{TEST_PREFIX}{name}", float(value), now, 0) for name, value in metrics.items()
        ],
    )
    client.set_tag(run_id, TAG_TEST_FINGERPRINT, frame_fingerprint(test))
    # SHAP global importance on test rows, logged on the run (``training.explain``)
    log_global_importance(run_id, get_blueprint(blueprint), model, test, client=client)
    return metrics
