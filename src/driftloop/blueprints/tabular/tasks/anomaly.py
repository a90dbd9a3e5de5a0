"""Anomaly detection: an anomaly score per row and a flag at ``contamination``.

Candidates: IsolationForest, LocalOutlierFactor (novelty) and a one-class SVM,
each after the table's schema, imputation, encoding and scaling, and each
wrapped so that the score is higher for a more anomalous row and the flag is
raised above the ``1 - contamination`` quantile of the training rows' scores
(``contamination`` option, default 0.05). The models fit on the features alone.

Ranking. With a label column (``target``: anomalies are 1/true/yes/anomaly/outlier
values, or else the rarer of two values) the candidates are ranked by ROC-AUC of
the score against it; average precision and the flags' precision/recall are logged.
Without one, by *score stability*: the same configuration refitted on
``STABILITY_RESAMPLES`` random 80 % subsamples of the evaluated rows, the Spearman
correlation between its scores and the model's on those rows, averaged -- a
detector whose ranking of rows survives resampling is one whose notion of
"anomalous" the data supports (1: the same ranking every time).

Feedback: ``true``/``false`` -- was it an anomaly. "Correct" when it matches the
flag; with a label column the live score is ROC-AUC of the served scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM

from driftloop.blueprints.base import Metric, ParamRange
from driftloop.blueprints.codec import Answer, Limits, TensorSpec
from driftloop.blueprints.feedback import Feedback, FeedbackError
from driftloop.blueprints.scoring import anomaly_scores
from driftloop.blueprints.tabular.codec import TableCodec
from driftloop.blueprints.tabular.estimators import AnomalyDetector
from driftloop.blueprints.tabular.tasks.base import TaskStrategy, per_instance
from driftloop.datasets.errors import DatasetValidationError

DEFAULT_CONTAMINATION = 0.05
STABILITY_RESAMPLES = 3
_ANOMALY_WORDS = {"1", "true", "yes", "anomaly", "anomalous", "outlier", "abnormal"}


def anomaly_flags(values: pd.Series) -> np.ndarray:
    """A label column as booleans (True: an anomaly); see the module docstring."""
    present = values.dropna()
    if pd.api.types.is_bool_dtype(present) or pd.api.types.is_numeric_dtype(present):
        return values.fillna(0).astype(float).to_numpy() != 0
    text = values.astype(str).str.strip().str.lower()
    if text.isin(_ANOMALY_WORDS).any():
        return text.isin(_ANOMALY_WORDS).to_numpy()
    rarest = text.value_counts().idxmin()
    return (text == rarest).to_numpy()


def score_stability(model: Any, features: pd.DataFrame, seed: int = 0) -> float:
    """Mean Spearman correlation of the model's scores with refits on 80 % subsamples."""
    if len(features) < 10:
        return math.nan
    reference = model.decision_function(features)
    rng = np.random.default_rng(seed)
    correlations = []
    for _ in range(STABILITY_RESAMPLES):
        rows = rng.choice(len(features), size=int(0.8 * len(features)), replace=False)
        replica = clone(model).fit(features.iloc[rows])
        rho = spearmanr(reference, replica.decision_function(features)).statistic
        correlations.append(0.0 if not np.isfinite(rho) else float(rho))
    return float(np.mean(correlations))


class AnomalyCodec(TableCodec):
    """Table rows in; ``{"score": s, "anomaly": flag}`` out (v2: FP64 score, BOOL anomaly)."""

    def __init__(self, model: Any, limits: Limits) -> None:
        super().__init__(model, limits, classifier=False)
        self.outputs = (TensorSpec("score", "FP64", (-1,)), TensorSpec("anomaly", "BOOL", (-1,)))

    def predict(self, batch) -> Answer:
        scores = np.asarray(self.model.decision_function(batch.model_input), dtype=np.float64)
        flags = np.asarray(self.model.predict(batch.model_input)).astype(bool)
        return Answer(
            instances=[
                {"score": float(s), "anomaly": bool(f)} for s, f in zip(scores, flags, strict=True)
            ],
            tensors=[("score", "FP64", scores), ("anomaly", "BOOL", flags)],
            labels=["anomaly" if f else "normal" for f in flags],
            confidences=[None] * len(scores),
        )


class AnomalyFeedback(Feedback):
    """Was it an anomaly: true/false. Live score: ROC-AUC of the scores (``ranked_by_label``)."""

    kind = "anomaly"

    def __init__(self, ranked_by_label: bool) -> None:
        self.ranked_by_label = ranked_by_label

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        """One answer for every instance of the request, or a list of one per instance."""
        truths = per_instance(truth, outputs)
        for item in truths:
            if not isinstance(item, bool):
                raise FeedbackError(f"value must be true (an anomaly) or false, got {item!r}")
        return truth, all(o.get("anomaly") == t for o, t in zip(outputs, truths, strict=True))

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        truth = np.asarray([bool(t) for t in truths])
        if not self.ranked_by_label or truth.all() or not truth.any():
            return math.nan  # stability is not a live quantity; one class has no ROC-AUC
        return float(roc_auc_score(truth, [float(o["score"]) for o in outputs]))


class AnomalyTask(TaskStrategy):
    @property
    def contamination(self) -> float:
        return float(self.options.get("contamination", DEFAULT_CONTAMINATION))

    @property
    def target_column(self) -> str | None:
        return self.options.get("target")

    @property
    def class_column(self) -> str | None:
        # a split or fold without an anomaly (or without a normal row) has no ROC-AUC:
        # the label column is split like classes
        return self.target_column

    def default_metric(self) -> Metric:
        if self.target_column:
            return Metric("roc_auc", True, floor=0.5)
        return Metric("score_stability", True, floor=None)

    def validate(self, frame: pd.DataFrame, what: str) -> dict:
        report = super().validate(frame, what)
        label = self.target_column
        if label is not None:
            missing = int(frame[label].isna().sum())
            if missing:
                raise DatasetValidationError(
                    f"column {label!r}: {missing} of {len(frame)} rows have no label; "
                    "drop or fill them (or leave --target out to rank by score stability)",
                    {label: f"{missing} rows empty"},
                )
            flags = anomaly_flags(frame[label])
            if flags.all() or not flags.any():
                raise DatasetValidationError(
                    f"column {label!r}: {'every' if flags.all() else 'no'} row of {len(frame)} "
                    "is an anomaly; a label column needs both (1/true/yes/anomaly/outlier: one)",
                    {label: "a single class"},
                )
            report["anomalies"] = int(flags.sum())
        return report

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        rows = super().rows_from_feedback(inputs, truths)
        if self.target_column:
            rows[self.target_column] = [int(bool(t)) for t in truths]
        return rows

    def candidates(self, seed: int, n_jobs: int) -> dict[str, Any]:
        from driftloop.blueprints.tabular.blueprint import table_pipeline

        def detector(estimator: Any) -> Any:
            return table_pipeline(AnomalyDetector(estimator, self.contamination), scale=True)

        return {
            "isolation_forest": detector(
                IsolationForest(n_estimators=100, random_state=seed, n_jobs=n_jobs)
            ),
            "local_outlier_factor": detector(LocalOutlierFactor(n_neighbors=20, novelty=True)),
            "one_class_svm": detector(OneClassSVM(nu=self.contamination, gamma="scale")),
        }

    def tuning_space(self, candidate: str) -> dict[str, ParamRange]:
        return {
            "isolation_forest": {
                "model__detector__n_estimators": ParamRange(50, 300, integer=True),
                "model__detector__max_features": ParamRange(0.3, 1.0),
            },
            "local_outlier_factor": {
                "model__detector__n_neighbors": ParamRange(5, 50, integer=True, log=True)
            },
            "one_class_svm": {
                "model__detector__nu": ParamRange(0.01, 0.3, log=True),
                "model__detector__gamma": ParamRange(1e-3, 1.0, log=True),
            },
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        features = self.features(frame)
        scores = model.decision_function(features)
        flags = model.predict(features).astype(bool)
        if self.target_column:
            return anomaly_scores(anomaly_flags(frame[self.target_column]), scores, flags)
        return {
            "score_stability": score_stability(model, features),
            "flagged_share": float(flags.mean()),
            "n_rows": float(len(frame)),
        }

    def codec(self, model: Any, limits: Limits) -> AnomalyCodec:
        return AnomalyCodec(model, limits)

    def drift_featurizer(self, model: Any, reference: pd.DataFrame):
        from driftloop.blueprints.tabular.drift import TableFeaturizer

        return TableFeaturizer.fit(
            model, self.features(reference), classifier=False, output_key="score"
        )

    def feedback(self) -> Feedback:
        return AnomalyFeedback(ranked_by_label=bool(self.target_column))
