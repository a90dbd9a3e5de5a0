"""Metrics shared by blueprints: classification from probabilities, regression from numbers.

Each returns a flat ``{name: float}`` dict, the shape MLflow logs and the gate reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

# the direction of every metric a blueprint may rank by
GREATER_IS_BETTER = {
    "macro_f1": True,
    "accuracy": True,
    "roc_auc": True,
    "r2": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
}


def classification_scores(
    y_true: Sequence[str], classes: Sequence[str], probabilities: np.ndarray
) -> dict[str, float]:
    """macro-F1 (primary), accuracy, per-class F1, log loss; ROC-AUC for two classes."""
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
