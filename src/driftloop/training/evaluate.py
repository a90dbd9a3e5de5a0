"""Held-out evaluation of a trained model, recorded on its training run.

When the blueprint says the chosen model's test scores do not justify it
(``Blueprint.fallback``, e.g. a forecast that does not beat persistence), its fallback is
logged as the run's model in its place -- the register step registers the newest model
of the run -- with the reason and the replaced candidate as run tags the register step
carries onto the version.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.blueprints import Blueprint, get_blueprint
from driftloop.blueprints.base import Fallback
from driftloop.datasets.files import read_frame
from driftloop.datasets.fingerprint import frame_fingerprint
from driftloop.lineage import (
    TAG_BEST_CANDIDATE,
    TAG_FALLBACK,
    TAG_FALLBACK_REPLACED,
    TAG_TEST_FINGERPRINT,
)
from driftloop.settings import Settings

log = logging.getLogger(__name__)

TEST_PREFIX = "test_"
REPLACED_PREFIX = "replaced_test_"  # the test scores of a candidate its fallback replaced


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
    blueprint = get_blueprint(blueprint)
    metrics = evaluate(blueprint, model, test)
    client = mlflow.MlflowClient()
    fallback = blueprint.fallback(model, test, metrics)
    logged = {f"{TEST_PREFIX}{name}": value for name, value in metrics.items()}
    if fallback is not None:
        replaced = metrics
        model = fallback.model
        metrics = evaluate(blueprint, model, test)
        _log_fallback(client, run_id, blueprint, fallback, test, artifact_path)
        logged = {f"{TEST_PREFIX}{name}": value for name, value in metrics.items()} | {
            f"{REPLACED_PREFIX}{name}": value for name, value in replaced.items()
        }
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(name, float(value), now, 0) for name, value in logged.items()],
    )
    client.set_tag(run_id, TAG_TEST_FINGERPRINT, frame_fingerprint(test))
    # SHAP global importance on test rows, logged on the run (``training.explain``)
    log_global_importance(run_id, blueprint, model, test, client=client)
    return metrics


def _log_fallback(
    client: Any,
    run_id: str,
    blueprint: Blueprint,
    fallback: Fallback,
    test: pd.DataFrame,
    artifact_path: str,
) -> None:
    """Log ``fallback.model`` as the run's model (the newest under ``artifact_path``) and
    say on the run why, and which candidate it replaced."""
    import mlflow

    from driftloop.training.model_logging import log_model

    replaced = client.get_run(run_id).data.tags.get(TAG_BEST_CANDIDATE, "the chosen candidate")
    with mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
        log_model(fallback.model, name=artifact_path, input_example=blueprint.input_example(test))
        mlflow.set_tags(
            {
                TAG_FALLBACK: fallback.reason,
                TAG_FALLBACK_REPLACED: replaced,
                TAG_BEST_CANDIDATE: fallback.candidate,
            }
        )
    log.warning(
        "run %s: %s serves instead of %s: %s", run_id, fallback.candidate, replaced,
        fallback.reason,
    )  # fmt: skip
