"""Drift of a recommender's traffic: segment mix, cold-user rate, category mix, popularity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.drift import DriftFeaturizer, SuggestedDetector
from driftloop.blueprints.recsys.codec import as_requests
from driftloop.blueprints.recsys.segments import SEGMENTS

# categories kept apart in the category mix; the rest share one "other" bin
MAX_CATEGORIES = 20


class RecsysFeaturizer(DriftFeaturizer):
    """What the monitor compares for a recommender's traffic:

    - ``segment``: the segment mix (chi-square);
    - ``cold_user``: 1 for a user id the model never saw in training (chi-square: the
      cold-user rate);
    - ``category``: the leading category (genre) of each user's known items and session,
      among the ``MAX_CATEGORIES`` - 2 most common in training, "other" or "none"
      (chi-square: the category mix);
    - ``popularity``: per request, the mean log-popularity of the user's items and of the
      recommended ones, and the log history length (KS: the item-popularity distribution).
    """

    groups = {
        "segment": "categorical",
        "cold_user": "categorical",
        "category": "categorical",
        "popularity": "continuous",
    }

    def __init__(self, model: Any) -> None:
        self.model = model
        genres = getattr(model, "genre_matrix_", None)
        names = list(getattr(model, "genres_", []))
        if genres is not None and names:
            counts = (genres > 0).sum(axis=0)
            order = np.argsort(-counts, kind="stable")[: MAX_CATEGORIES - 2]
        else:
            order = np.empty(0, dtype=int)
        # genre column -> category code (1.. kept genres, last: "other"); 0 is "none"
        self._category_codes = np.full(len(names), len(order) + 1, dtype=np.int64)
        self._category_codes[order] = np.arange(1, len(order) + 1)
        self._n_categories = len(order) + 2

    def categories(self, group: str) -> dict[int, list[int]] | None:
        if group == "segment":
            return {0: list(range(len(SEGMENTS)))}
        if group == "cold_user":
            return {0: [0, 1]}
        if group == "category":
            return {0: list(range(self._n_categories))}
        return None

    def knows(self, output: dict) -> bool:
        return isinstance(output, dict) and output.get("segment") in SEGMENTS

    def _category(self, codes: np.ndarray) -> int:
        genres = getattr(self.model, "genre_matrix_", None)
        if genres is None or not len(codes) or not genres.shape[1]:
            return 0
        weights = (genres[codes] > 0).sum(axis=0)
        if not weights.any():
            return 0
        return int(self._category_codes[int(np.argmax(weights))])

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        model = self.model
        model_input = as_requests(model_input, model=model)
        popularity = np.log1p(model.popularity_)
        rows, cold, category = [], [], []
        for user, recent, output in zip(
            model_input["user_id"], model_input["recent_items"], outputs, strict=True
        ):
            history = model.history_codes(str(user), list(recent))
            served = [model.item_index_[i] for i in output.get("item_ids", []) if i in
                      model.item_index_]  # fmt: skip
            rows.append(
                (
                    float(popularity[history].mean()) if len(history) else 0.0,
                    float(popularity[served].mean()) if served else 0.0,
                    float(np.log1p(len(history))),
                )
            )
            cold.append(0 if str(user) in model.histories_ else 1)
            category.append(self._category(history))
        segment = np.array([[SEGMENTS.index(o["segment"])] for o in outputs], dtype=np.int64)
        return {
            "segment": segment.reshape(-1, 1),
            "cold_user": np.array(cold, dtype=np.int64).reshape(-1, 1),
            "category": np.array(category, dtype=np.int64).reshape(-1, 1),
            "popularity": np.array(rows, dtype=np.float32).reshape(-1, 3),
        }

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("chisquare-segment", "chisquare", "segment"),
            SuggestedDetector("chisquare-cold-user", "chisquare", "cold_user"),
            SuggestedDetector("chisquare-category", "chisquare", "category"),
            SuggestedDetector("ks-popularity", "ks", "popularity", correction="fdr"),
        ]
