"""Clustering: rows grouped without a target; served as a cluster id.

Candidates: k-means, a Gaussian mixture and a density method (DBSCAN whose
clusters label new rows by their nearest core point), each after the table's
schema, imputation, one-hot encoding and scaling. Ranked by silhouette on the
validation rows (in the prepared feature space; greater is better); Davies-Bouldin
and the largest cluster's share are logged. The number of clusters is in each
candidate's tuning space.

Feedback: the cluster id a user thinks a row belongs to. It says whether the
served cluster was right (the monitor's live agreement, from the store's
right/wrong counts); it gives no live silhouette, which needs the features.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from driftloop.blueprints.base import Metric, ParamChoice, ParamRange
from driftloop.blueprints.codec import Answer, Limits, TensorSpec
from driftloop.blueprints.feedback import Feedback, FeedbackError
from driftloop.blueprints.scoring import cluster_scores
from driftloop.blueprints.tabular.codec import TableCodec
from driftloop.blueprints.tabular.estimators import DensityClusterer
from driftloop.blueprints.tabular.tasks.base import TaskStrategy, per_instance

DEFAULT_CLUSTERS = 3
# silhouette on at most this many rows (it is quadratic in the rows)
_SILHOUETTE_ROWS = 2000


def prepared(model: Any, features: pd.DataFrame) -> np.ndarray:
    """The rows as the clusterer sees them (every pipeline step but the last)."""
    return np.asarray(model[:-1].transform(features), dtype=float)


def cluster_ids(model: Any) -> list[int]:
    """Every cluster id the fitted model can answer."""
    final = model[-1]
    if isinstance(final, GaussianMixture):
        return list(range(final.n_components))
    if isinstance(final, KMeans):
        return list(range(final.n_clusters))
    return sorted(int(c) for c in np.unique(final.core_labels_))


class ClusterCodec(TableCodec):
    """Table rows in; ``{"cluster": id}`` out (v2: one INT64 ``cluster`` tensor)."""

    def __init__(self, model: Any, limits: Limits) -> None:
        super().__init__(model, limits, classifier=False)
        self.outputs = (TensorSpec("cluster", "INT64", (-1,)),)

    def predict(self, batch) -> Answer:
        clusters = np.asarray(self.model.predict(batch.model_input), dtype=np.int64).reshape(-1)
        return Answer(
            instances=[{"cluster": int(c)} for c in clusters],
            tensors=[("cluster", "INT64", clusters)],
            labels=[str(int(c)) for c in clusters],  # the store and metrics count clusters
            confidences=[None] * len(clusters),
        )


class ClusterFeedback(Feedback):
    """The cluster id a user thinks is right; "correct" when it is the served one."""

    kind = "cluster"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        """One id for every instance of the request, or a list of one id per instance."""
        truths = per_instance(truth, outputs)
        for item in truths:
            if isinstance(item, bool) or not isinstance(item, int | float):
                raise FeedbackError(f"value must be a cluster id (an integer), got {item!r}")
            if not float(item).is_integer() or item < 0:
                raise FeedbackError(f"value must be a cluster id (an integer >= 0), got {item!r}")
        ids = [int(item) for item in truths]
        correct = all(o.get("cluster") == i for o, i in zip(outputs, ids, strict=True))
        return (ids if isinstance(truth, list) else ids[0]), correct

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        # silhouette needs the features, not a user's opinion: no live value to compare
        return math.nan


class ClusteringTask(TaskStrategy):
    @property
    def target_column(self) -> str | None:
        return None

    def default_metric(self) -> Metric:
        return Metric("silhouette", True, floor=None)

    def candidates(self, seed: int, n_jobs: int) -> dict[str, Any]:
        from driftloop.blueprints.tabular.blueprint import table_pipeline

        return {
            "kmeans": table_pipeline(
                KMeans(n_clusters=DEFAULT_CLUSTERS, n_init=4, random_state=seed), scale=True
            ),
            "gaussian_mixture": table_pipeline(
                GaussianMixture(
                    n_components=DEFAULT_CLUSTERS, covariance_type="diag", reg_covar=1e-3,
                    random_state=seed,
                ),
                scale=True,
            ),
            "density": table_pipeline(DensityClusterer(), scale=True),
        }  # fmt: skip

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        return {
            "kmeans": {"model__n_clusters": ParamRange(2, 10, integer=True)},
            "gaussian_mixture": {
                "model__n_components": ParamRange(2, 10, integer=True),
                "model__covariance_type": ParamChoice(("diag", "full", "spherical")),
            },
            "density": {
                "model__eps_quantile": ParamRange(0.2, 0.95),
                "model__min_samples": ParamRange(3, 15, integer=True),
            },
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        rows = frame.sample(n=min(len(frame), _SILHOUETTE_ROWS), random_state=0)
        features = self.features(rows)
        return cluster_scores(prepared(model, features), model.predict(features))

    def codec(self, model: Any, limits: Limits) -> ClusterCodec:
        return ClusterCodec(model, limits)

    def drift_featurizer(self, model: Any, reference: pd.DataFrame):
        from driftloop.blueprints.tabular.drift import TableFeaturizer

        return TableFeaturizer.fit(
            model,
            self.features(reference),
            classifier=False,
            classes=[str(c) for c in cluster_ids(model)],
            output_key="cluster",
        )

    def feedback(self) -> Feedback:
        return ClusterFeedback()
