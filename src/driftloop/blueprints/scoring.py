"""Metrics shared by blueprints: classification from probabilities, regression from numbers,
clusters from the features they group, anomaly scores, and forecasts (MASE).

Each returns a flat ``{name: float}`` dict, the shape MLflow logs and the gate reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# sklearn.metrics is imported inside the functions that score: importing it costs
# seconds, and every importer of driftloop.blueprints (the monitor, the trigger, each
# pipeline step) reads GREATER_IS_BETTER without scoring anything

# the direction of every metric a blueprint may rank by
GREATER_IS_BETTER = {
    "macro_f1": True,
    "accuracy": True,
    "roc_auc": True,
    "r2": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
    "silhouette": True,
    "davies_bouldin": False,
    "average_precision": True,
    "score_stability": True,
    "mase": False,
    "map50": True,  # object detection: COCO mAP at IoU 0.5 (the seed's gate metric)
    "map": True,  # ... averaged over IoU 0.5:0.95
}


def classification_scores(
    y_true: Sequence[str], classes: Sequence[str], probabilities: np.ndarray
) -> dict[str, float]:
    """macro-F1 (primary), accuracy, per-class F1, log loss; ROC-AUC for two classes."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    y_true = np.asarray(y_true).astype(str)
    classes = np.asarray(classes).astype(str)
    probabilities = np.asarray(probabilities, dtype=float)
    y_pred = classes[np.argmax(probabilities, axis=1)]
    labels = sorted(set(classes) | set(y_true))
    metrics = {
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "n_rows": float(len(y_true)),
    }
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    metrics |= {f"f1_{label}": float(value) for label, value in zip(labels, per_class, strict=True)}
    if set(y_true) <= set(classes) and len(set(y_true)) > 1:
        metrics["log_loss"] = float(log_loss(y_true, probabilities, labels=list(classes)))
        if len(classes) == 2:
            metrics["roc_auc"] = float(roc_auc_score(y_true == classes[1], probabilities[:, 1]))
    return metrics


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    labels = sorted(set(map(str, y_true)) | set(map(str, y_pred)))
    return float(
        f1_score(
            list(map(str, y_true)),
            list(map(str, y_pred)),
            labels=labels,
            average="macro",
            zero_division=0,
        )
    )


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    error = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    return float(np.sqrt(np.mean(error**2)))


def regression_scores(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """RMSE (primary, lower is better), MAE, R²."""
    from sklearn.metrics import mean_absolute_error, r2_score

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    metrics = {
        "rmse": rmse(y_true, y_pred),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "n_rows": float(len(y_true)),
    }
    if len(y_true) > 1:
        metrics["r2"] = float(r2_score(y_true, y_pred))
    return metrics


def cluster_scores(features: np.ndarray, clusters: Sequence[int]) -> dict[str, float]:
    """Silhouette (primary, greater is better), Davies-Bouldin (lower is better), cluster shares.

    One cluster, or as many clusters as rows, has no silhouette: it scores the worst, -1.
    """
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    features = np.asarray(features, dtype=float)
    clusters = np.asarray(clusters)
    found, counts = np.unique(clusters, return_counts=True)
    metrics = {"n_clusters": float(len(found)), "n_rows": float(len(clusters))}
    if 2 <= len(found) < len(clusters):
        metrics["silhouette"] = float(silhouette_score(features, clusters))
        metrics["davies_bouldin"] = float(davies_bouldin_score(features, clusters))
    else:
        metrics["silhouette"] = -1.0
    metrics["largest_cluster_share"] = float(counts.max() / len(clusters))
    return metrics


def anomaly_scores(
    is_anomaly: Sequence[bool], scores: Sequence[float], flags: Sequence[bool]
) -> dict[str, float]:
    """ROC-AUC of the scores (primary), average precision, precision/recall of the flags."""
    from sklearn.metrics import (
        average_precision_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    truth = np.asarray(is_anomaly, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    flags = np.asarray(flags, dtype=bool)
    metrics = {"n_rows": float(len(truth)), "flagged_share": float(flags.mean())}
    if truth.any() and not truth.all():
        metrics["roc_auc"] = float(roc_auc_score(truth, scores))
        metrics["average_precision"] = float(average_precision_score(truth, scores))
    metrics["precision"] = float(precision_score(truth, flags, zero_division=0))
    metrics["recall"] = float(recall_score(truth, flags, zero_division=0))
    return metrics


def mase(forecasts: np.ndarray, actuals: np.ndarray, scales: Sequence[float]) -> float:
    """Mean absolute scaled error over windows: each window's MAE (over the steps whose
    actual value is known) divided by its scale -- the in-sample MAE of the seasonal
    naive forecast on the window's own history -- averaged over the windows."""
    forecasts = np.asarray(forecasts, dtype=float)
    actuals = np.asarray(actuals, dtype=float)
    errors = np.abs(forecasts - actuals)
    known = np.isfinite(errors).any(axis=1)
    if not known.any():
        return float("nan")
    per_window = np.nanmean(errors[known], axis=1) / np.asarray(scales, dtype=float)[known]
    return float(np.mean(per_window))
