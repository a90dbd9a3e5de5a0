"""The training run's candidate comparison as a picture, logged with the version it produced.

The train step logs ``training/candidates.json`` on its run: every candidate (and
ensemble) with its validation metrics. Once that run's model is registered, this
draws each candidate's validation score of the blueprint's primary metric as a
horizontal bar, best first in the metric's direction, the chosen candidate in its
own colour, and logs the PNG on the same run as ``training/candidates.png`` -- in
MLflow it sits beside the version's model. The console's AutoML page draws the same
figure (:func:`candidates_figure`) as inline SVG.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUMMARY_ARTIFACT = "training/candidates.json"
PLOT_ARTIFACT = "training/candidates.png"
BAR_COLOUR, CHOSEN_COLOUR = "#1f77b4", "#2ca02c"


def candidate_scores(summary: Mapping[str, Any], metric: str) -> dict[str, float]:
    """candidate -> its validation ``metric``, in the summary's order (unscored ones left out).

    Candidates log the metric under its own name; summaries of other runs have used a
    ``val_`` or ``validation_`` prefix.
    """
    scores = {}
    for candidate in summary.get("candidates") or []:
        metrics = candidate.get("metrics") or {}
        for key in (metric, f"val_{metric}", f"validation_{metric}"):
            if key in metrics and metrics[key] is not None:
                scores[str(candidate.get("name"))] = float(metrics[key])
                break
    return scores


def ranked(scores: Mapping[str, float], greater_is_better: bool) -> dict[str, float]:
    """``scores`` best first (ties keep their order: the candidate declared first wins them)."""
    order = sorted(scores, key=scores.get, reverse=greater_is_better)
    return {name: scores[name] for name in order}


def candidates_figure(
    scores: Mapping[str, float], metric: str, *, chosen: str | None = None, title: str = ""
):
    """Horizontal bars of ``scores``, the first at the top, ``chosen`` in its own colour."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(scores)
    figure, axes = plt.subplots(figsize=(8.0, 1.2 + 0.35 * max(len(names), 1)), dpi=100)
    axes.set_title(title or f"candidates by validation {metric}", fontsize=10)
    axes.grid(alpha=0.3, axis="x")
    colours = [CHOSEN_COLOUR if name == chosen else BAR_COLOUR for name in names]
    bars = axes.barh(names[::-1], [scores[n] for n in names][::-1], color=colours[::-1])
    axes.bar_label(bars, fmt="%.4f", fontsize=8, padding=2)
    axes.set_xlabel(metric)
    axes.margins(x=0.15)  # room for the value labels
    return figure


def candidates_png(
    scores: Mapping[str, float],
    metric: str,
    *,
    greater_is_better: bool = True,
    chosen: str | None = None,
) -> bytes:
    from matplotlib import pyplot as plt

    direction = "higher" if greater_is_better else "lower"
    figure = candidates_figure(
        ranked(scores, greater_is_better),
        metric,
        chosen=chosen,
        title=f"candidates by validation {metric} ({direction} is better; chosen in green)",
    )
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def log_candidate_plot(
    run_id: str, metric: str, greater_is_better: bool, tracking_uri: str | None = None
) -> str | None:
    """Draw the run's candidate comparison and log it on the run; the artifact path, or None
    when the run has no candidate summary with scores (an imported model, say)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from driftloop.settings import get_settings

    # the registry's own resolution (ModelRegistry): the run is where the version came from
    client = MlflowClient(tracking_uri=tracking_uri or get_settings().resolved_tracking_uri)
    with tempfile.TemporaryDirectory(prefix="driftloop-candidates-") as scratch:
        try:
            local = client.download_artifacts(run_id, SUMMARY_ARTIFACT, scratch)
        except (MlflowException, OSError) as exc:
            log.info("run %s has no %s (%s): no candidate plot", run_id, SUMMARY_ARTIFACT, exc)
            return None
        summary = json.loads(Path(local).read_text())
        scores = candidate_scores(summary, metric)
        if not scores:
            log.info("run %s: no candidate has a validation %s: no candidate plot", run_id, metric)
            return None
        png = Path(scratch) / Path(PLOT_ARTIFACT).name
        png.write_bytes(
            candidates_png(
                scores,
                metric,
                greater_is_better=greater_is_better,
                chosen=summary.get("best_candidate"),
            )
        )
        client.log_artifact(run_id, str(png), str(Path(PLOT_ARTIFACT).parent))
    return PLOT_ARTIFACT
