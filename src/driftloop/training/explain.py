"""Global importance of a trained model, logged on its training run.

The blueprint's explainer (``Blueprint.explainer``) explains each of at most
``MAX_ROWS`` held-out rows' predicted output (the predicted class's probability or
log-odds, or the predicted value), fewer if ``TIME_BUDGET_S`` runs out; the
importance of an input is its mean |contribution| over those rows: a table's input
columns (one-hot and date-part features summed back into their column), a text's
words (the top ``TOP_FEATURES``).

Artifacts under ``explanations/`` of the run (so of every version registered from it):

* ``importance.json`` -- method, rows, and the features with their mean |contribution|;
* ``importance.csv``  -- the same table;
* ``importance.png``  -- a bar plot of the top features;
* ``background.json`` -- the held-out input rows an explainer that needs a background
  (linear, permutation) explains against; the predictor reads it (``load_background``)
  so its per-request explanations match the ones logged here.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints import Blueprint
from driftloop.blueprints.explain import Explainer, importance

log = logging.getLogger(__name__)

ARTIFACT_DIR = "explanations"
BACKGROUND_FILE = "background.json"
MAX_ROWS = 200
# rows are explained in chunks until this budget is spent (at least one chunk): a text
# model's words cost the model many evaluations per row
TIME_BUDGET_S = 8.0
CHUNK_ROWS = 25
BACKGROUND_ROWS = 100
TOP_FEATURES = 30  # rows of the table and plot (a text model has thousands of words)
PLOTTED = 20


@dataclass
class GlobalImportance:
    method: str
    rows: int
    seconds: float
    table: pd.DataFrame  # feature, mean_abs_contribution (largest first)
    background: pd.DataFrame | None

    def as_json(self) -> dict:
        return {
            "method": self.method,
            "rows": self.rows,
            "explained": "each row's predicted class (probability or log-odds) or value",
            "seconds": round(self.seconds, 3),
            "features": [
                {"feature": str(f), "mean_abs_contribution": float(v)}
                for f, v in zip(
                    self.table["feature"], self.table["mean_abs_contribution"], strict=True
                )
            ],
        }


def predicted_labels(blueprint: Blueprint, model: Any, features: Any) -> list[str | None]:
    """Each row's predicted class (None for a number): the output its explanation is about."""
    if blueprint.class_column is None:
        return [None] * len(features)
    return [str(label) for label in model.predict(features)]


def global_importance(
    blueprint: Blueprint, model: Any, frame: pd.DataFrame, *, seed: int = 0
) -> GlobalImportance | None:
    """Mean |contribution| per input over at most ``MAX_ROWS`` rows of ``frame`` (None:
    the blueprint has no explainer)."""
    started = time.perf_counter()
    sample = frame.sample(n=min(MAX_ROWS, len(frame)), random_state=seed)
    features = blueprint.features(sample)
    background = features.head(BACKGROUND_ROWS) if isinstance(features, pd.DataFrame) else None
    explainer: Explainer | None = blueprint.explainer(model, background)
    if explainer is None:
        return None
    labels = predicted_labels(blueprint, model, features)
    attributions = []
    for start in range(0, len(labels), CHUNK_ROWS):
        if attributions and time.perf_counter() - started > TIME_BUDGET_S:
            break
        chunk = (
            features.iloc[start : start + CHUNK_ROWS]
            if isinstance(features, pd.DataFrame)
            else features[start : start + CHUNK_ROWS]
        )
        attributions.extend(explainer.explain(chunk, labels[start : start + CHUNK_ROWS]))
    table = importance(attributions, explainer.group_key).head(TOP_FEATURES)
    return GlobalImportance(
        method=explainer.method,
        rows=len(attributions),
        seconds=time.perf_counter() - started,
        table=table,
        background=background if explainer.uses_background else None,
    )


def plot_importance(result: GlobalImportance, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = result.table.head(PLOTTED).iloc[::-1]  # largest at the top
    figure = Figure(figsize=(7, 0.35 * len(shown) + 1.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.barh([str(f) for f in shown["feature"]], shown["mean_abs_contribution"])
    axes.set_xlabel("mean |SHAP value|")
    axes.set_title(f"Global importance: {result.method}, {result.rows} held-out rows")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_artifacts(result: GlobalImportance, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "importance.json").write_text(json.dumps(result.as_json(), indent=2))
    result.table.to_csv(directory / "importance.csv", index=False)
    plot_importance(result, directory / "importance.png")
    if result.background is not None:
        payload = json.loads(
            result.background.to_json(orient="split", index=False, date_format="iso")
        )
        (directory / BACKGROUND_FILE).write_text(json.dumps(payload))


def log_global_importance(
    run_id: str, blueprint: Blueprint, model: Any, frame: pd.DataFrame, *, client: Any = None
) -> GlobalImportance | None:
    """Compute and log the importance artifacts on ``run_id``.

    An explanation that fails is logged as a warning and returns None: the model is
    still scored, gated and registered (explanations inform, they do not decide).
    """
    import mlflow

    client = client or mlflow.MlflowClient()
    try:
        result = global_importance(blueprint, model, frame)
    except Exception as exc:  # noqa: BLE001 - any model/SHAP failure: warn, keep the run
        log.warning("no global importance for run %s: %s: %s", run_id, type(exc).__name__, exc)
        return None
    if result is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        write_artifacts(result, Path(scratch))
        client.log_artifacts(run_id, scratch, artifact_path=ARTIFACT_DIR)
    log.info(
        "global importance of run %s: %s on %d rows in %.1f s",
        run_id,
        result.method,
        result.rows,
        result.seconds,
    )
    return result


def load_background(run_id: str, tracking_uri: str | None = None) -> pd.DataFrame | None:
    """The background rows logged on ``run_id`` (None: none logged)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=f"{ARTIFACT_DIR}/{BACKGROUND_FILE}",
                dst_path=scratch,
                tracking_uri=tracking_uri,
            )
        except (MlflowException, OSError):
            return None
        payload = json.loads(Path(path).read_text())
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    return frame.astype(object).where(frame.notna(), np.nan)
