"""Recommenders over implicit interactions, sklearn-style: ``fit(frame)`` then ``recommend``.

``fit`` takes interaction rows (``user``, ``item``, ``timestamp``, optional ``weight`` and
``genres``) and keeps each training user's history, so a request needs only a user id
(plus, optionally, items seen in the current session). Every recommender answers a user
with the top ``k`` catalogue items it has not seen and the user's segment (by history
length, ``segments``), so baselines are compared per segment with driftloop's model.

- ``MostPopular``: all-time interaction counts (the baseline every recommender must beat);
- ``RecentPopular``: counts decayed by age, with a half-life (anonymous users);
- ``ItemKNN``: item-item cosine over co-interactions, the ``neighbours`` nearest kept;
- ``EASE``: Steck's closed-form linear item-item model (ridge ``l2``);
- ``SegmentedRecommender`` (driftloop): routes by segment: warm users get ItemKNN blended
  with genre content, semi users the popularity of their k-means cluster (PCA of genre
  profiles), anonymous users recency-decayed popularity.

Collaborative parts work on the ``max_items`` most popular items (dense item-item
matrices); the rest of the catalogue is reached through content and popularity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator

from driftloop.blueprints.recsys.segments import ANONYMOUS, DEFAULT_WARM_MIN, SEMI, segment_of

DAY = 86_400.0
# chosen on a validation window (the last 20 % of the training window) of MovieLens:
# 30 d: NDCG@10 0.21, 180 d: 0.378, 730 d: 0.383, 3650 d: 0.337 for anonymous users
DEFAULT_HALF_LIFE_DAYS = 730.0


def _unit_max(scores: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] by their maximum (unchanged when all are zero)."""
    top = scores.max() if scores.size else 0.0
    return scores / top if top > 0 else scores


class Recommender(BaseEstimator):
    """What every recommender shares: the catalogue, histories, popularity and ranking."""

    warm_min: int = DEFAULT_WARM_MIN

    # --- fitting ---------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> Recommender:
        frame = X.reset_index(drop=True)
        users = frame["user"].astype(str).to_numpy()
        items = frame["item"].astype(str).to_numpy()
        self.items_, item_codes = np.unique(items, return_inverse=True)
        self.item_index_ = {item: i for i, item in enumerate(self.items_)}
        user_ids, user_codes = np.unique(users, return_inverse=True)
        weights = frame["weight"].to_numpy(dtype=float) if "weight" in frame else None
        times = frame["timestamp"].to_numpy(dtype=float)
        self.last_time_ = float(times.max())
        matrix = sparse.csr_matrix(
            (np.ones(len(frame)), (user_codes, item_codes)),
            shape=(len(user_ids), len(self.items_)),
        )
        matrix.data[:] = 1.0  # implicit: a repeated interaction counts once
        self.histories_ = {
            str(user): matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]].copy()
            for u, user in enumerate(user_ids)
        }
        self.popularity_ = np.asarray(matrix.sum(axis=0)).ravel()
        self._fit_model(matrix, frame, item_codes, times, weights)
        return self

    def _fit_model(self, matrix, frame, item_codes, times, weights) -> None:
        """Model-specific fitting on the user x item matrix (binary)."""

    # --- answering ---------------------------------------------------------------------
    def history_of(self, user: str) -> list[str]:
        """The items a training user interacted with (empty for an unknown user)."""
        codes = self.histories_.get(str(user))
        return [] if codes is None else self.items_[codes].tolist()

    def segment_for(self, history_length: int) -> str:
        return segment_of(history_length, int(self.warm_min))

    def _scores(self, history: np.ndarray, segment: str) -> np.ndarray:
        raise NotImplementedError

    def recommend(
        self,
        users: Sequence[str],
        recent: Sequence[Sequence[str]] | None = None,
        k: int | Sequence[int] = 10,
    ) -> list[tuple[list[str], list[float], str]]:
        """(item ids, scores, segment) per user: the top ``k`` items not yet seen.

        ``recent``: items each user interacted with since training (a session), added to
        the user's history; unknown items among them are ignored.
        """
        ks = [int(k)] * len(users) if np.isscalar(k) else [int(v) for v in k]
        recent = recent if recent is not None else [()] * len(users)
        tiebreak = 1e-9 * _unit_max(self.popularity_)
        answers = []
        for user, session, top in zip(users, recent, ks, strict=True):
            known = self.histories_.get(str(user), np.empty(0, dtype=np.int64))
            extra = [self.item_index_[i] for i in session if i in self.item_index_]
            history = np.unique(np.concatenate([known, np.asarray(extra, dtype=np.int64)]))
            segment = self.segment_for(len(history))
            scores = self._scores(history, segment).astype(np.float64) + tiebreak
            scores[history] = -np.inf
            top = min(top, int(np.isfinite(scores).sum()))
            best = np.argpartition(-scores, top - 1)[:top] if top > 0 else np.empty(0, int)
            best = best[np.argsort(-scores[best], kind="stable")]
            answers.append((self.items_[best].tolist(), scores[best].tolist(), segment))
        return answers

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Item ids [n, max k] for rows of ``user_id`` (``k``, ``recent_items`` optional);
        a shorter list is padded with "" (what ``mlflow.pyfunc`` callers get)."""
        users = X["user_id"].astype(str).tolist()
        ks = X["k"].astype(int).tolist() if "k" in X else [10] * len(users)
        recent = X["recent_items"].tolist() if "recent_items" in X else None
        answers = self.recommend(users, recent, ks)
        width = max((len(items) for items, _, _ in answers), default=0)
        out = np.full((len(answers), width), "", dtype=object)
        for row, (items, _, _) in enumerate(answers):
            out[row, : len(items)] = items
        return out


class MostPopular(Recommender):
    def __init__(self, warm_min: int = DEFAULT_WARM_MIN):
        self.warm_min = warm_min

    def _scores(self, history, segment):
        return self.popularity_


class RecentPopular(Recommender):
    def __init__(
        self, half_life_days: float = DEFAULT_HALF_LIFE_DAYS, warm_min: int = DEFAULT_WARM_MIN
    ):
        self.half_life_days = half_life_days
        self.warm_min = warm_min

    def _fit_model(self, matrix, frame, item_codes, times, weights):
        self.recent_popularity_ = decayed_counts(
            item_codes, times, len(self.items_), self.last_time_, self.half_life_days
        )

    def _scores(self, history, segment):
        return self.recent_popularity_


def decayed_counts(codes, times, n_items, now, half_life_days) -> np.ndarray:
    """Per item, the sum of 2^(-age / half-life) over its interactions."""
    decay = np.exp2(-(now - times) / (float(half_life_days) * DAY))
    return np.bincount(codes, weights=decay, minlength=n_items)


def _top_items(popularity: np.ndarray, max_items: int) -> np.ndarray:
    order = np.argsort(-popularity, kind="stable")
    return np.sort(order[: min(int(max_items), len(order))])


class _ItemItem(Recommender):
    """An item-item matrix over the ``max_items`` most popular items; users without
    history get popularity."""

    def _item_scores(self, history: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(self.items_))
        local = self.local_index_[history]
        local = local[local >= 0]
        if len(local):
            scores[self.cf_items_] = np.asarray(self.weights_[local].sum(axis=0)).ravel()
        return scores

    def _gram(self, matrix) -> np.ndarray:
        self.cf_items_ = _top_items(self.popularity_, self.max_items)
        self.local_index_ = np.full(len(self.items_), -1, dtype=np.int64)
        self.local_index_[self.cf_items_] = np.arange(len(self.cf_items_))
        sub = matrix[:, self.cf_items_]
        return (sub.T @ sub).toarray().astype(np.float64)

    def _scores(self, history, segment):
        if len(history) == 0:
            return self.popularity_
        return self._item_scores(history)


class ItemKNN(_ItemItem):
    def __init__(
        self, neighbours: int = 100, max_items: int = 3000, warm_min: int = DEFAULT_WARM_MIN
    ):
        self.neighbours = neighbours
        self.max_items = max_items
        self.warm_min = warm_min

    def _fit_model(self, matrix, frame, item_codes, times, weights):
        self.weights_ = item_cosine_neighbours(self._gram(matrix), int(self.neighbours))


def item_cosine_neighbours(gram: np.ndarray, neighbours: int) -> sparse.csr_matrix:
    """Cosine similarity from a co-occurrence matrix, each row cut to its nearest items."""
    norms = np.sqrt(np.diag(gram))
    norms[norms == 0] = 1.0
    similarity = gram / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    keep = min(neighbours, similarity.shape[1])
    if keep < similarity.shape[1]:
        cut = np.argpartition(-similarity, keep - 1, axis=1)[:, :keep]
        rows = np.repeat(np.arange(similarity.shape[0]), keep)
        values = similarity[rows, cut.ravel()]
        similarity = sparse.csr_matrix(
            (values, (rows, cut.ravel())), shape=similarity.shape, dtype=np.float32
        )
    else:
        similarity = sparse.csr_matrix(similarity.astype(np.float32))
    similarity.eliminate_zeros()
    return similarity


class EASE(_ItemItem):
    def __init__(self, l2: float = 250.0, max_items: int = 3000, warm_min: int = DEFAULT_WARM_MIN):
        self.l2 = l2
        self.max_items = max_items
        self.warm_min = warm_min

    def _fit_model(self, matrix, frame, item_codes, times, weights):
        gram = self._gram(matrix)
        gram[np.diag_indices_from(gram)] += float(self.l2)
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights.astype(np.float32)


def genre_matrix(frame: pd.DataFrame, items: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Items x genres, idf-weighted and L2-normalised rows (zeros for an item without genres)."""
    genres = (
        frame.drop_duplicates("item").set_index("item")["genres"]
        if "genres" in frame
        else pd.Series(dtype=str)
    )
    per_item = [str(genres.get(item, "") or "").split("|") for item in items]
    names = sorted({g for gs in per_item for g in gs if g})
    index = {g: i for i, g in enumerate(names)}
    matrix = np.zeros((len(items), len(names)), dtype=np.float64)
    for row, gs in enumerate(per_item):
        for g in gs:
            if g:
                matrix[row, index[g]] = 1.0
    if names:
        idf = np.log((1 + len(items)) / (1 + matrix.sum(axis=0))) + 1.0
        matrix *= idf
        norms = np.linalg.norm(matrix, axis=1)
        matrix[norms > 0] /= norms[norms > 0, None]
    return matrix, names


class SegmentedRecommender(_ItemItem):
    """driftloop's recommender: one model, routed by the user's segment.

    warm: ``cf_weight`` x item-item CF (``cf``: "ease" or "itemknn") + (1 - ``cf_weight``) x
    genre content, each scaled to
    [0, 1], plus a little recency popularity; semi: popularity within the user's k-means
    cluster (users embedded by PCA of their items' genre profiles) blended with content;
    anonymous: popularity decayed with ``half_life_days``.
    """

    def __init__(
        self,
        cf: str = "ease",
        l2: float = 250.0,
        neighbours: int = 100,
        max_items: int = 3000,
        warm_min: int = DEFAULT_WARM_MIN,
        cf_weight: float = 0.8,
        content_weight: float = 0.3,
        clusters: int = 8,
        components: int = 6,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        random_state: int = 0,
    ):
        self.cf = cf
        self.l2 = l2
        self.neighbours = neighbours
        self.max_items = max_items
        self.warm_min = warm_min
        self.cf_weight = cf_weight
        self.content_weight = content_weight
        self.clusters = clusters
        self.components = components
        self.half_life_days = half_life_days
        self.random_state = random_state

    def _fit_model(self, matrix, frame, item_codes, times, weights):
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        if self.cf not in ("ease", "itemknn"):
            raise ValueError(f"cf must be 'ease' or 'itemknn', got {self.cf!r}")
        collaborative = EASE if self.cf == "ease" else ItemKNN
        collaborative._fit_model(self, matrix, frame, item_codes, times, weights)
        self.recent_popularity_ = decayed_counts(
            item_codes, times, len(self.items_), self.last_time_, self.half_life_days
        )
        self.genre_matrix_, self.genres_ = genre_matrix(frame, self.items_)
        self.cluster_popularity_ = None
        width = self.genre_matrix_.shape[1]
        users = [h for h in self.histories_.values() if len(h)]
        if width >= 2 and len(users) >= 2:
            self.pca_ = PCA(n_components=min(int(self.components), width - 1), random_state=0)
            self.pca_.fit(self.genre_matrix_)
            embeddings = np.array([self._embedding(h) for h in users])
            distinct = len(np.unique(embeddings.round(9), axis=0))
            n_clusters = max(1, min(int(self.clusters), distinct))
            self.kmeans_ = KMeans(n_clusters, n_init=4, random_state=self.random_state)
            labels = self.kmeans_.fit_predict(embeddings)
            popularity = np.zeros((n_clusters, len(self.items_)))
            for label, history in zip(labels, users, strict=True):
                popularity[label, history] += 1.0
            self.cluster_popularity_ = popularity

    def _embedding(self, history: np.ndarray) -> np.ndarray:
        return self.pca_.transform(self.genre_matrix_[history].mean(axis=0, keepdims=True))[0]

    def _content(self, history: np.ndarray) -> np.ndarray:
        if not self.genre_matrix_.shape[1]:
            return np.zeros(len(self.items_))
        profile = self.genre_matrix_[history].mean(axis=0)
        return self.genre_matrix_ @ profile

    def _scores(self, history, segment):
        if segment == ANONYMOUS:
            return self.recent_popularity_
        content = _unit_max(self._content(history))
        if segment == SEMI:
            if self.cluster_popularity_ is None:
                base = self.popularity_
            else:
                cluster = int(self.kmeans_.predict(self._embedding(history)[None, :])[0])
                base = self.cluster_popularity_[cluster]
            return _unit_max(base) + float(self.content_weight) * content
        cf = _unit_max(self._item_scores(history))
        alpha = float(self.cf_weight)
        return alpha * cf + (1 - alpha) * content + 0.05 * _unit_max(self.recent_popularity_)
