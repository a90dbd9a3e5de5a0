"""Per-instance explanations of a fitted model: what each input added to one output.

A blueprint's :class:`Explainer` (``Blueprint.explainer(model, background)``) turns a
batch of model inputs into one :class:`Attribution` per instance: the output it
explains (the predicted class's probability or log-odds, or the predicted value),
the base value (that output with nothing known about the instance: the background's
average, or an empty text), and each input's contribution. SHAP's additivity holds:
``base_value + sum(contributions) == value``, the model's output for the instance.

The same attributions, averaged as mean |contribution| over a sample of test rows,
are the global importance logged with every version (``training.explain``).

:func:`matrix_attributions` is the SHAP part shared by blueprints whose model ends in
an estimator over a numeric matrix: TreeSHAP for tree ensembles (xgboost's own, exact
and fast, for xgboost), the linear explainer for linear models (against a background
sample), and a bounded permutation explainer for anything else.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_TOP_K = 5
# a permutation explainer evaluates the model on this many background rows per coalition,
# along this many orders of the features (antithetic pairs)
PERMUTATION_BACKGROUND_ROWS = 20
PERMUTATION_ORDERS = 4


class ExplainError(ValueError):
    """No explanation can be made for this model or input; the message says why."""


@dataclass
class Attribution:
    """One instance's explanation: ``base_value + sum(contributions)`` is ``value``."""

    output: str  # what is explained, e.g. "probability of Adelie", "prediction"
    base_value: float
    features: list[str]  # input columns, or the tokens of a text
    values: list[Any]  # the instance's value of each feature (JSON-safe)
    contributions: np.ndarray

    @property
    def value(self) -> float:
        return float(self.base_value + self.contributions.sum())

    def top(self, k: int) -> dict:
        """The ``k`` largest contributions by magnitude; ``rest`` sums the others."""
        order = np.argsort(-np.abs(self.contributions), kind="stable")[:k]
        shown = [
            {
                "feature": self.features[i],
                "value": json_safe(self.values[i]),
                "contribution": float(self.contributions[i]),
            }
            for i in order
        ]
        rest = float(self.contributions.sum() - sum(c["contribution"] for c in shown))
        return {
            "explained": self.output,
            "base_value": float(self.base_value),
            "value": self.value,
            "contributions": shown,
            "rest": rest,
        }


class Explainer(ABC):
    """Explains a fitted model's outputs, one :class:`Attribution` per instance."""

    method: str = ""  # how, in words: "tree SHAP", "linear SHAP", ...
    # True when the explanations are relative to a background sample of training rows
    uses_background: bool = False

    def group_key(self, feature: str) -> str:
        """Features with one key are one in the global importance (a word in any case)."""
        return feature

    @abstractmethod
    def explain(self, model_input: Any, labels: Sequence[str | None]) -> list[Attribution]:
        """Attributions of ``model_input``'s instances; ``labels``: each one's predicted
        class (None for a number), the output a classifier's explanation is about."""


def json_safe(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def importance(
    attributions: Sequence[Attribution], key: Callable[[str], str] = str
) -> pd.DataFrame:
    """Mean |contribution| per feature over the instances (0 where one lacks the feature).

    Contributions of features with the same ``key`` (e.g. a token's lower case) are
    summed within an instance first. Columns: feature, mean_abs_contribution, sorted
    largest first.
    """
    totals: dict[str, float] = defaultdict(float)
    for attribution in attributions:
        signed: dict[str, float] = defaultdict(float)
        for feature, contribution in zip(
            attribution.features, attribution.contributions, strict=True
        ):
            signed[key(feature)] += float(contribution)
        for feature, contribution in signed.items():
            totals[feature] += abs(contribution)
    count = max(len(attributions), 1)
    frame = pd.DataFrame(
        {
            "feature": list(totals),
            "mean_abs_contribution": [total / count for total in totals.values()],
        }
    )
    return frame.sort_values(
        ["mean_abs_contribution", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


# --- SHAP over a numeric matrix ----------------------------------------------------------------


@dataclass
class MatrixShap:
    """SHAP values of an estimator's outputs: ``values`` [n, d, m], ``base`` [n, m]."""

    values: np.ndarray
    base: np.ndarray
    outputs: list[str]  # the m outputs' names: the classes, or ["prediction"]
    space: str  # "probability", "log-odds" or "value"


def explainer_kind(estimator: Any) -> str:
    """ "xgboost", "tree", "linear" or "permutation": which SHAP algorithm fits ``estimator``."""
    inner = getattr(estimator, "booster_", estimator)
    if type(inner).__module__.split(".")[0] == "xgboost":
        return "xgboost"
    module = type(estimator).__module__
    if module.startswith(("sklearn.ensemble", "sklearn.tree")) and hasattr(estimator, "apply"):
        return "tree"
    if "HistGradientBoosting" in type(estimator).__name__:
        return "tree"
    if hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        return "linear"
    return "permutation"


METHODS = {
    "xgboost": "tree SHAP (xgboost)",
    "tree": "tree SHAP",
    "linear": "linear SHAP",
    "permutation": "permutation SHAP",
}


def needs_background(kind: str) -> bool:
    return kind in ("linear", "permutation")


def matrix_attributions(
    estimator: Any, matrix: np.ndarray, background: np.ndarray | None, classes: list[str] | None
) -> MatrixShap:
    """SHAP values of ``estimator`` on ``matrix`` (rows x features), by its kind."""
    import shap

    kind = explainer_kind(estimator)
    matrix = np.asarray(matrix, dtype=np.float64)
    if needs_background(kind) and background is None:
        raise ExplainError(
            f"a {type(estimator).__name__} is explained against a background sample of "
            "training rows, and this version has none logged (the evaluate step logs it)"
        )
    if kind == "xgboost":
        values, base = _xgboost_contributions(estimator, matrix)
    elif kind == "tree":
        explanation = shap.TreeExplainer(estimator)(matrix, check_additivity=False)
        values, base = explanation.values, explanation.base_values
    elif kind == "linear":
        explanation = shap.LinearExplainer(estimator, np.asarray(background, dtype=np.float64))(
            matrix
        )
        values, base = explanation.values, explanation.base_values
    else:
        predict = estimator.predict_proba if classes is not None else estimator.predict
        values, base = permutation_values(predict, matrix, np.asarray(background, dtype=np.float64))
    values = np.asarray(values, dtype=np.float64)
    base = np.asarray(base, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    base = np.broadcast_to(base.reshape(len(matrix), -1), (len(matrix), values.shape[2])).copy()
    return _named(estimator, matrix, values, base, classes)


def permutation_values(
    predict: Callable[[np.ndarray], np.ndarray],
    matrix: np.ndarray,
    background: np.ndarray,
    orders: int = PERMUTATION_ORDERS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values by antithetic permutation sampling against a background sample.

    Along each sampled order of the features, an instance's features replace the
    background's one at a time; each step's change of the mean output is that
    feature's marginal contribution. Every order's contributions add up to
    ``f(x) - mean f(background)`` exactly. (shap's own permutation explainer compiles
    with numba on first use: tens of seconds a predictor should not spend.)
    Returns values [n, d, m] and the base [n, m].
    """
    rng = np.random.default_rng(seed)
    background = background[:PERMUTATION_BACKGROUND_ROWS]
    count, width = matrix.shape
    permutations = []
    for _ in range(max(1, orders // 2)):
        order = rng.permutation(width)
        permutations.extend([order, order[::-1]])
    values, bases = [], []
    for row in matrix:
        coalitions = []
        for order in permutations:
            current = background.copy()
            coalitions.append(current.copy())
            for feature in order:
                current[:, feature] = row[feature]
                coalitions.append(current.copy())
        outputs = np.asarray(predict(np.concatenate(coalitions)), dtype=np.float64)
        outputs = outputs.reshape(len(permutations), width + 1, len(background), -1).mean(axis=2)
        contributions = np.zeros((width, outputs.shape[-1]))
        for order, path in zip(permutations, outputs, strict=True):
            contributions[order] += np.diff(path, axis=0)
        values.append(contributions / len(permutations))
        bases.append(outputs[0, 0])
    return np.array(values), np.array(bases)


def _xgboost_contributions(estimator: Any, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xgboost's own TreeSHAP (``pred_contribs``): values [n, d(, m)] and the bias term."""
    import xgboost

    booster = getattr(estimator, "booster_", estimator).get_booster()
    contributions = booster.predict(xgboost.DMatrix(matrix), pred_contribs=True)
    if contributions.ndim == 3:  # [n, m, d + 1]
        return contributions[:, :, :-1].transpose(0, 2, 1), contributions[:, :, -1]
    return contributions[:, :-1], contributions[:, -1]


def _named(
    estimator: Any,
    matrix: np.ndarray,
    values: np.ndarray,
    base: np.ndarray,
    classes: list[str] | None,
) -> MatrixShap:
    """Name the outputs, and tell probabilities from log-odds by checking them."""
    if classes is None:
        return MatrixShap(values, base, ["prediction"], "value")
    outputs = classes if values.shape[2] == len(classes) else [classes[-1]]
    totals = base + values.sum(axis=1)
    probabilities = np.asarray(estimator.predict_proba(matrix), dtype=np.float64)
    if len(outputs) == 1:
        probabilities = probabilities[:, -1:]
    space = "probability" if np.allclose(totals, probabilities, atol=1e-4) else "log-odds"
    return MatrixShap(values, base, outputs, space)


def explained_output(
    shap_values: MatrixShap, row: int, label: str | None
) -> tuple[str, float, np.ndarray]:
    """(output name, base value, contributions [d]) for one row's predicted ``label``.

    A binary model with one output (the second class's) explains the first class by
    the negated values: log-odds(a) = -log-odds(b), p(a) = 1 - p(b).
    """
    if label is None or shap_values.space == "value":
        return "prediction", float(shap_values.base[row, 0]), shap_values.values[row, :, 0]
    outputs = shap_values.outputs
    if label in outputs:
        index = outputs.index(label)
        return (
            f"{shap_values.space} of {label}",
            float(shap_values.base[row, index]),
            shap_values.values[row, :, index],
        )
    # the one-output binary case: the label is the other class, whose output is the
    # complement (probability: 1 - p) or the negation (log-odds) of the one explained
    base = float(shap_values.base[row, 0])
    return (
        f"{shap_values.space} of {label}",
        1.0 - base if shap_values.space == "probability" else -base,
        -shap_values.values[row, :, 0],
    )
