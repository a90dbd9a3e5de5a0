"""Scores of next-day forecasts: MAE, RMSE, MAPE (%), MASE against persistence, and a
Diebold-Mariano p-value against persistence.

MASE here scales a model's MAE by the MAE of persistence (tomorrow = today) on the same
days, so persistence scores exactly 1 and a model is worth serving only below 1.
``dm_pvalue`` is one-sided: small when the model's absolute errors are lower than
persistence's by more than chance (one-step forecasts: the plain variance of the loss
differential, normal approximation).
"""

from __future__ import annotations

import numpy as np

from driftloop.blueprints.scoring import mase, rmse


def diebold_mariano_pvalue(actual, predicted, baseline) -> float:
    """P(a loss differential this negative | equal accuracy); 1.0 when the two never differ."""
    from scipy.stats import norm

    differential = np.abs(predicted - actual) - np.abs(baseline - actual)
    spread = float(np.std(differential, ddof=1)) if len(differential) > 1 else 0.0
    if spread == 0.0:
        return 1.0
    statistic = float(np.mean(differential)) / (spread / np.sqrt(len(differential)))
    return float(norm.cdf(statistic))


def forecast_scores(actual, predicted, last) -> dict[str, float]:
    actual = np.asarray(actual, dtype=float).reshape(-1)
    predicted = np.asarray(predicted, dtype=float).reshape(-1)
    last = np.asarray(last, dtype=float).reshape(-1)
    persistence_mae = float(np.mean(np.abs(last - actual)))
    scale = [persistence_mae] * len(actual)
    return {
        "mae": float(np.mean(np.abs(predicted - actual))),
        "rmse": rmse(actual, predicted),
        "mape": float(100.0 * np.mean(np.abs(predicted - actual) / np.abs(actual))),
        # one window per day, each scaled by persistence's MAE over the period; rounded so
        # that mean(e / s) vs mean(e) / s float noise cannot lift persistence above its own 1
        # (the gate's ceiling)
        "mase": round(mase(predicted[:, None], actual[:, None], scale), 12),
        "dm_pvalue": diebold_mariano_pvalue(actual, predicted, last),
        "persistence_mae": persistence_mae,
        "n_rows": float(len(actual)),
    }
