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
- ``ALS``: implicit-feedback matrix factorisation (the ``implicit`` package);
- ``SegmentedRecommender`` (driftloop): routes by segment: every segment starts from
  recency-decayed popularity; warm users add EASE (or ItemKNN) and genre content, semi users
  the popularity of their k-means cluster (PCA of genre profiles) and content, anonymous
  users get the decayed popularity alone; half-lives and weights chosen per segment on a
  validation period at the end of the training window. Warm users may instead be answered
  by a LightGBM LambdaRank re-ranker over candidates from every generator, kept only when
  it beats the warm blend on that validation period.

Collaborative parts work on the ``max_items`` most popular items (dense item-item
matrices); the rest of the catalogue is reached through content and popularity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator

from driftloop.blueprints.recsys.segments import ANONYMOUS, DEFAULT_WARM_MIN, SEMI, WARM, segment_of

logger = logging.getLogger(__name__)

DAY = 86_400.0
# the popularity half-life when it is not chosen on a validation period (RecentPopular, and
# SegmentedRecommender(tune=False)); MovieLens validation: 30 d: NDCG@10 0.21, 180 d: 0.378,
# 730 d: 0.383, 3650 d: 0.337 for anonymous users
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
        self.categories_, self.item_categories_ = category_catalogue(frame, self.items_)
        self._fit_model(matrix, frame, item_codes, times, weights)
        return self

    def _fit_model(self, matrix, frame, item_codes, times, weights) -> None:
        """Model-specific fitting on the user x item matrix (binary)."""

    # --- answering ---------------------------------------------------------------------
    def history_of(self, user: str) -> list[str]:
        """The items a training user interacted with (empty for an unknown user)."""
        codes = self.histories_.get(str(user))
        return [] if codes is None else self.items_[codes].tolist()

    def history_codes(self, user: str, session: Sequence[str] = ()) -> np.ndarray:
        """Item codes of a user's training history plus a session (unknown items ignored)."""
        known = self.histories_.get(str(user), np.empty(0, dtype=np.int64))
        extra = [self.item_index_[i] for i in session if i in self.item_index_]
        return np.unique(np.concatenate([known, np.asarray(extra, dtype=np.int64)]))

    def segment_for(self, history_length: int) -> str:
        return segment_of(history_length, int(self.warm_min))

    def unknown_categories(self, categories: Sequence[str]) -> list[str]:
        """Those of ``categories`` no training item belongs to."""
        known = set(getattr(self, "categories_", ()))
        return [c for c in categories if c not in known]

    def in_categories(self, categories: Sequence[str]) -> np.ndarray:
        """Per catalogue item, whether it belongs to any of ``categories`` (all known)."""
        unknown = self.unknown_categories(categories)
        if unknown:
            raise ValueError(f"category: unknown {', '.join(map(repr, unknown))}")
        index = {name: i for i, name in enumerate(self.categories_)}
        columns = [index[c] for c in categories]
        return np.asarray(self.item_categories_[:, columns].sum(axis=1)).ravel() > 0

    def _scores(self, history: np.ndarray, segment: str) -> np.ndarray:
        raise NotImplementedError

    def recommend(
        self,
        users: Sequence[str],
        recent: Sequence[Sequence[str]] | None = None,
        k: int | Sequence[int] = 10,
        categories: Sequence[Sequence[str] | None] | None = None,
    ) -> list[tuple[list[str], list[float], str]]:
        """(item ids, scores, segment) per user: the top ``k`` items not yet seen.

        ``recent``: items each user interacted with since training (a session), added to
        the user's history; unknown items among them are ignored. ``categories``: per user,
        None (any item) or the categories (genres) an item must belong to one of; fewer
        than ``k`` items (none at all) when fewer unseen items match.
        """
        ks = [int(k)] * len(users) if np.isscalar(k) else [int(v) for v in k]
        recent = recent if recent is not None else [()] * len(users)
        categories = categories if categories is not None else [None] * len(users)
        tiebreak = 1e-9 * _unit_max(self.popularity_)
        answers = []
        for user, session, top, wanted in zip(users, recent, ks, categories, strict=True):
            history = self.history_codes(user, session)
            segment = self.segment_for(len(history))
            scores = self._scores(history, segment).astype(np.float64) + tiebreak
            scores[history] = -np.inf
            if wanted:
                scores[~self.in_categories(list(wanted))] = -np.inf
            top = min(top, int(np.isfinite(scores).sum()))
            best = np.argpartition(-scores, top - 1)[:top] if top > 0 else np.empty(0, int)
            best = best[np.argsort(-scores[best], kind="stable")]
            answers.append((self.items_[best].tolist(), scores[best].tolist(), segment))
        return answers

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Item ids [n, max k] for rows of ``user_id`` (``k``, ``recent_items``, ``category``
        optional);
        a shorter list is padded with "" (what ``mlflow.pyfunc`` callers get)."""
        users = X["user_id"].astype(str).tolist()
        ks = X["k"].astype(int).tolist() if "k" in X else [10] * len(users)
        recent = X["recent_items"].tolist() if "recent_items" in X else None
        categories = X["category"].tolist() if "category" in X else None
        answers = self.recommend(users, recent, ks, categories)
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

    def _item_scores(self, history: np.ndarray, weights: Any = None) -> np.ndarray:
        """Summed item-item weights (``weights_`` unless others over the same items)."""
        weights = self.weights_ if weights is None else weights
        scores = np.zeros(len(self.items_))
        local = self.local_index_[history]
        local = local[local >= 0]
        if len(local):
            scores[self.cf_items_] = np.asarray(weights[local].sum(axis=0)).ravel()
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


def item_genres(frame: pd.DataFrame, items: np.ndarray) -> list[list[str]]:
    """Each item's genres (categories), from its first row that names any ("a|b")."""
    if "genres" not in frame:
        return [[] for _ in items]
    named = frame.loc[frame["genres"].fillna("").astype(str) != "", ["item", "genres"]]
    genres = named.assign(item=named["item"].astype(str)).drop_duplicates("item")
    lookup = dict(zip(genres["item"], genres["genres"].astype(str), strict=True))
    return [[g for g in lookup.get(str(item), "").split("|") if g] for item in items]


def category_catalogue(frame: pd.DataFrame, items: np.ndarray) -> tuple[list[str], Any]:
    """(category names, items x categories sparse 0/1 matrix): what category filters use."""
    per_item = item_genres(frame, items)
    names = sorted({g for gs in per_item for g in gs})
    index = {g: i for i, g in enumerate(names)}
    rows = [row for row, gs in enumerate(per_item) for _ in gs]
    columns = [index[g] for gs in per_item for g in gs]
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(len(items), len(names))
    )
    return names, matrix


def genre_matrix(frame: pd.DataFrame, items: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Items x genres, idf-weighted and L2-normalised rows (zeros for an item without genres)."""
    per_item = item_genres(frame, items)
    names = sorted({g for gs in per_item for g in gs})
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


class ALS(Recommender):
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) fitted with the
    ``implicit`` package; a user's factors are solved from their history (plus session) at
    request time, so session-only users are answered without refitting."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        warm_min: int = DEFAULT_WARM_MIN,
        random_state: int = 0,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.warm_min = warm_min
        self.random_state = random_state

    def _fit_model(self, matrix, frame, item_codes, times, weights):
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit warns (and slows down) when BLAS runs its own threads inside its loops
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                random_state=int(self.random_state),
                num_threads=1,  # deterministic and polite on a shared machine
            )
            model.fit(matrix.tocsr().astype(np.float32), show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        factors = self.item_factors_.shape[1]
        self.gram_ = self.item_factors_.T @ self.item_factors_ + float(
            self.regularization
        ) * np.eye(factors)

    def _scores(self, history, segment):
        if len(history) == 0:
            return self.popularity_
        # the ALS user step: (Y'Y + alpha Y_h'Y_h + reg I) x = (1 + alpha) sum_h y_h
        seen = self.item_factors_[history]
        alpha = float(self.alpha)
        user = np.linalg.solve(self.gram_ + alpha * seen.T @ seen, (1 + alpha) * seen.sum(axis=0))
        return self.item_factors_ @ user


# the warm re-ranker is trained only with at least this many views that have a relevant
# candidate (fewer queries than this cannot say anything LambdaRank could generalise)
MIN_RANKER_QUERIES = 20
# decay half-lives (days) the driftloop recommender chooses among on its validation period
HALF_LIVES = (90.0, 180.0, 365.0, 730.0, 1460.0)
# blend weights it chooses among, per segment (0 first: the simpler blend wins a tie)
CF_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
CONTENT_WEIGHTS = (0.0, 0.1, 0.3)
CLUSTER_WEIGHTS = (0.0, 0.25, 0.5, 1.0)


class SegmentedRecommender(_ItemItem):
    """driftloop's recommender: one model, routed by the user's segment.

    Every segment starts from recency-decayed popularity (what users do next depends on
    what is current) and adds what its history supports, each part scaled to [0, 1]:
    warm: + ``cf_weight`` x item-item CF (``cf``: "ease" or "itemknn") + ``content_weight``
    x genre content; semi: + ``cluster_weight`` x the popularity within the user's k-means
    cluster (users embedded by PCA of their items' genre profiles) + ``content_weight`` x
    content; anonymous: decayed popularity alone.

    ``tune=True`` (default) chooses the half-life and weights of each segment on a
    validation period: the last ``validation_share`` of the training interactions in time,
    asked in the same given-N views as the test (``metrics.evaluation_views``), with the
    parts fitted on the interactions before it; the chosen blend (``blend_``) is then
    refitted on all of them. The test period is never looked at. ``tune=False`` uses the
    given weights (and ``half_life_days``) for every segment.

    ``warm_ranker=True`` (with ``tune``) also trains a re-ranker for warm users
    (``_chosen_ranker``) and serves it only if it beats the warm blend on the validation
    period; ``warm_model_`` says which answers warm users.
    """

    def __init__(
        self,
        cf: str = "ease",
        l2: float = 500.0,
        neighbours: int = 100,
        max_items: int = 3000,
        warm_min: int = DEFAULT_WARM_MIN,
        cf_weight: float = 0.5,
        content_weight: float = 0.1,
        cluster_weight: float = 0.5,
        clusters: int = 8,
        components: int = 6,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        tune: bool = True,
        validation_share: float = 0.2,
        k: int = 10,
        random_state: int = 0,
        warm_ranker: bool = True,
        ranker_candidates: int = 50,
    ):
        self.cf = cf
        self.l2 = l2
        self.neighbours = neighbours
        self.max_items = max_items
        self.warm_min = warm_min
        self.cf_weight = cf_weight
        self.content_weight = content_weight
        self.cluster_weight = cluster_weight
        self.clusters = clusters
        self.components = components
        self.half_life_days = half_life_days
        self.tune = tune
        self.validation_share = validation_share
        self.k = k
        self.random_state = random_state
        self.warm_ranker = warm_ranker
        self.ranker_candidates = ranker_candidates

    # --- fitting -----------------------------------------------------------------------------
    def _given_blend(self) -> dict[str, dict[str, float]]:
        half_life = float(self.half_life_days)
        return {
            ANONYMOUS: {"half_life_days": half_life},
            SEMI: {
                "half_life_days": half_life,
                "cluster": float(self.cluster_weight),
                "content": float(self.content_weight),
            },
            WARM: {
                "half_life_days": half_life,
                "cf": float(self.cf_weight),
                "content": float(self.content_weight),
            },
        }

    def fit(self, X: pd.DataFrame, y: Any = None) -> SegmentedRecommender:
        self.blend_ = self._given_blend()
        self.validation_ = {}
        self.ranker_ = None
        if self.tune:
            self.blend_, self.validation_, self.ranker_ = self._tuned_blend(X)
        # what answers warm users, chosen on the validation period: "ranker" or "blend"
        self.warm_model_ = "blend" if self.ranker_ is None else "ranker"
        if self.tune and self.warm_ranker:
            logger.info(
                "recsys warm users: %s chosen on the validation period (%s)",
                self.warm_model_,
                {k: round(v, 4) for k, v in self.validation_.items() if "ndcg" in k},
            )
        return super().fit(X, y)

    def _tuned_blend(self, frame: pd.DataFrame) -> tuple[dict, dict, Any]:
        """The blend of each segment with the best NDCG@k on the validation period (the
        given one for a segment the period does not ask about, or when it is too short),
        and the warm users' re-ranker when it beats the warm blend there (else None)."""
        from sklearn.base import clone

        from driftloop.blueprints.recsys.metrics import evaluation_views
        from driftloop.datasets.errors import DatasetValidationError
        from driftloop.datasets.interactions import temporal_split

        blend = self._given_blend()
        try:
            early, later = temporal_split(frame, test_share=float(self.validation_share))
        except DatasetValidationError:
            return blend, {}, None
        probe = clone(self).set_params(tune=False).fit(early)
        views = evaluation_views(probe.history_of, later, int(self.warm_min), probe.item_index_)
        decayed = {h: _unit_max(probe.decayed_popularity(h)) for h in HALF_LIVES}
        by_segment: dict[str, list] = {ANONYMOUS: [], SEMI: [], WARM: []}
        for view in views:
            history = probe.history_codes(view.user, view.session)
            parts = {}
            if view.segment != ANONYMOUS:
                parts["content"] = _unit_max(probe._content(history))
            if view.segment == SEMI:
                parts["cluster"] = _unit_max(probe._cluster_scores(history))
            if view.segment == WARM:
                parts["cf"] = _unit_max(probe._item_scores(history))
            by_segment[view.segment].append((history, parts, view.relevant))
        grids = {
            ANONYMOUS: [{}],
            SEMI: [{"cluster": a, "content": b} for a in CLUSTER_WEIGHTS for b in CONTENT_WEIGHTS],
            WARM: [{"cf": a, "content": b} for a in CF_WEIGHTS for b in CONTENT_WEIGHTS],
        }
        scores: dict[str, float] = {}
        k = int(self.k)
        for segment, asked in by_segment.items():
            if not asked:
                continue
            best, best_score = None, -1.0
            for half_life in HALF_LIVES:
                for weights in grids[segment]:
                    total = 0.0
                    for history, parts, relevant in asked:
                        mixed = decayed[half_life].copy()
                        for name, weight in weights.items():
                            if weight:
                                mixed += weight * parts[name]
                        total += _ndcg_of_top(mixed, history, probe.items_, relevant, k)
                    score = total / len(asked)
                    if score > best_score + 1e-12:
                        best, best_score = {"half_life_days": half_life, **weights}, score
            blend[segment] = best
            scores[f"validation_ndcg_at_{k}_{segment}"] = best_score
            scores[f"validation_users_{segment}"] = float(len(asked))
        ranker = None
        if self.warm_ranker and by_segment[WARM]:
            probe.blend_ = blend
            validation = [(history, relevant) for history, _, relevant in by_segment[WARM]]
            ranker = self._chosen_ranker(early, probe, validation, scores)
        return blend, scores, ranker

    def _chosen_ranker(self, early, probe, validation, scores) -> Any:
        """A LambdaRank re-ranker for warm users, or None when it does not beat the warm
        blend on the validation period.

        The ranker is trained one period earlier: the interactions before the validation
        period are split in time once more (the same share), features come from parts
        fitted on the earlier slice and labels from the later one; it is then judged on the
        validation period against the blend tuned there (so the blend has the advantage).
        When it wins, it is retrained on both periods' examples to serve."""
        from sklearn.base import clone

        from driftloop.blueprints.recsys.metrics import evaluation_views
        from driftloop.datasets.errors import DatasetValidationError
        from driftloop.datasets.interactions import temporal_split

        k = int(self.k)
        try:
            earlier, middle = temporal_split(early, test_share=float(self.validation_share))
        except DatasetValidationError:
            return None
        first = clone(self).set_params(tune=False).fit(earlier)
        first.blend_ = probe.blend_
        views = evaluation_views(first.history_of, middle, int(self.warm_min), first.item_index_)
        training = [
            (first.history_codes(v.user, v.session), v.relevant) for v in views if v.segment == WARM
        ]
        ranker = self._trained_ranker([(first, training)])
        if ranker is None:
            return None
        total = 0.0
        for history, relevant in validation:
            ranked = probe._ranked_scores(ranker, history)
            total += _ndcg_of_top(ranked, history, probe.items_, relevant, k)
        ranker_score = total / len(validation)
        scores[f"validation_ndcg_at_{k}_{WARM}_ranker"] = ranker_score
        if ranker_score <= scores[f"validation_ndcg_at_{k}_{WARM}"]:
            return None
        return self._trained_ranker([(first, training), (probe, validation)])

    def _trained_ranker(self, examples) -> Any:
        """LightGBM LambdaRank over (model, [(history codes, relevant item ids)]) examples,
        one query per view; None when too few views have a relevant candidate to learn
        from."""
        from lightgbm import LGBMRanker

        blocks, labels, groups = [], [], []
        for model, asked in examples:
            for history, relevant in asked:
                codes, features = model._ranker_features(history)
                label = np.isin(model.items_[codes], list(relevant)).astype(int)
                if not label.any():
                    continue  # nothing to rank above anything else
                blocks.append(features)
                labels.append(label)
                groups.append(len(codes))
        if len(groups) < MIN_RANKER_QUERIES:
            return None
        ranker = LGBMRanker(
            objective="lambdarank",
            # small trees, many examples per leaf: a warm validation period holds a
            # hundred-odd queries (MovieLens: 80 to train on), so depth overfits
            n_estimators=100,
            learning_rate=0.05,
            num_leaves=7,
            min_child_samples=100,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            reg_lambda=1.0,
            random_state=int(self.random_state),
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        ranker.fit(np.vstack(blocks), np.concatenate(labels), group=groups)
        return ranker

    def _fit_model(self, matrix, frame, item_codes, times, weights):
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        if self.cf not in ("ease", "itemknn"):
            raise ValueError(f"cf must be 'ease' or 'itemknn', got {self.cf!r}")
        collaborative = EASE if self.cf == "ease" else ItemKNN
        collaborative._fit_model(self, matrix, frame, item_codes, times, weights)
        # the re-ranker's other generators and item ages: for the validation probes, and
        # for the final model when its re-ranker was chosen
        self.als_ = None
        if self.warm_ranker and (not self.tune or self.ranker_ is not None):
            self._fit_ranker_parts(matrix, item_codes, times)
        half_lives = set(HALF_LIVES) | {float(b["half_life_days"]) for b in self.blend_.values()}
        self.decayed_popularity_ = {
            h: decayed_counts(item_codes, times, len(self.items_), self.last_time_, h)
            for h in sorted(half_lives)
        }
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

    def _fit_ranker_parts(self, matrix, item_codes, times) -> None:
        self.knn_weights_ = item_cosine_neighbours(self._gram(matrix), int(self.neighbours))
        als = ALS(warm_min=self.warm_min, random_state=self.random_state)
        als._fit_model(matrix, None, item_codes, times, None)
        self.als_ = als
        n_items = len(self.items_)
        self.item_first_seen_ = np.full(n_items, np.inf)
        np.minimum.at(self.item_first_seen_, item_codes, times)
        self.item_last_seen_ = np.full(n_items, -np.inf)
        np.maximum.at(self.item_last_seen_, item_codes, times)

    # --- answering ---------------------------------------------------------------------------
    def decayed_popularity(self, half_life_days: float) -> np.ndarray:
        return self.decayed_popularity_[float(half_life_days)]

    @property
    def recent_popularity_(self) -> np.ndarray:
        """What anonymous users get: popularity decayed with their segment's half-life."""
        return self.decayed_popularity(self.blend_[ANONYMOUS]["half_life_days"])

    def _embedding(self, history: np.ndarray) -> np.ndarray:
        return self.pca_.transform(self.genre_matrix_[history].mean(axis=0, keepdims=True))[0]

    def _content(self, history: np.ndarray) -> np.ndarray:
        if not self.genre_matrix_.shape[1] or not len(history):
            return np.zeros(len(self.items_))
        profile = self.genre_matrix_[history].mean(axis=0)
        return self.genre_matrix_ @ profile

    def _cluster_scores(self, history: np.ndarray) -> np.ndarray:
        if self.cluster_popularity_ is None or not len(history):
            return self.popularity_
        cluster = int(self.kmeans_.predict(self._embedding(history)[None, :])[0])
        return self.cluster_popularity_[cluster]

    def _scores(self, history, segment):
        # models pickled before the re-ranker existed have no ranker_
        ranker = getattr(self, "ranker_", None)
        if segment == WARM and ranker is not None and len(history):
            return self._ranked_scores(ranker, history)
        return self._blend_scores(history, segment)

    def _ranked_scores(self, ranker, history: np.ndarray) -> np.ndarray:
        """The blend's scores with the re-ranked candidates lifted above every other item
        (so a category filter that removes candidates still falls back to the blend)."""
        scores = self._blend_scores(history, WARM)
        codes, features = self._ranker_features(history)
        if len(codes):
            predicted = ranker.predict(features)
            scores[codes] = scores.max() + 1.0 + (predicted - predicted.min())
        return scores

    def _ranker_features(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(candidate item codes, their features) for a warm user's history.

        Candidates: the top ``ranker_candidates`` unseen items of each generator (the
        blend, the item-item CF, ItemKNN, ALS, genre content when items have genres, and
        popularity decayed fast and slowly). Features per candidate: each source's score
        (scaled to [0, 1] for this user) and rank, all-time popularity, the item's age and
        time since its last interaction, the user's history length, and how the candidate's
        age and popularity compare with those of the user's items."""
        sources = {
            "blend": self._blend_scores(history, WARM),
            "cf": self._item_scores(history),
            "itemknn": self._item_scores(history, self.knn_weights_),
            "als": self.als_._scores(history, WARM),
            "popularity": self.popularity_.astype(np.float64),
        }
        for half_life in HALF_LIVES:
            sources[f"popularity_{half_life:g}d"] = self.decayed_popularity(half_life)
        if self.genre_matrix_.shape[1]:
            sources["content"] = self._content(history)
        generators = {"blend", "cf", "itemknn", "als", "content"}
        generators |= {f"popularity_{HALF_LIVES[0]:g}d", f"popularity_{HALF_LIVES[-1]:g}d"}
        n_items = len(self.items_)
        unseen = np.ones(n_items, dtype=bool)
        unseen[history] = False
        per_source = min(int(self.ranker_candidates), int(unseen.sum()))
        if per_source == 0:
            return np.empty(0, dtype=np.int64), np.empty((0, 0))
        ranks, chosen = {}, set()
        for name, values in sources.items():
            order = np.argsort(-np.where(unseen, values, -np.inf), kind="stable")
            rank = np.empty(n_items)
            rank[order] = np.arange(n_items)
            ranks[name] = rank
            if name in generators:
                chosen.update(order[:per_source].tolist())
        codes = np.array(sorted(chosen), dtype=np.int64)
        columns = []
        for name, values in sources.items():
            columns += [_unit_max(values)[codes], ranks[name][codes]]
        age = (self.last_time_ - self.item_first_seen_) / DAY
        idle = (self.last_time_ - self.item_last_seen_) / DAY
        log_popularity = np.log1p(self.popularity_)
        user_age = float(age[history].mean()) if len(history) else 0.0
        user_popularity = float(log_popularity[history].mean()) if len(history) else 0.0
        columns += [
            age[codes],
            idle[codes],
            np.full(len(codes), float(len(history))),
            age[codes] - user_age,
            log_popularity[codes] - user_popularity,
        ]
        return codes, np.column_stack(columns)

    def _blend_scores(self, history: np.ndarray, segment: str) -> np.ndarray:
        blend = self.blend_[segment]
        scores = _unit_max(self.decayed_popularity(blend["half_life_days"])).copy()
        if segment == ANONYMOUS:
            return scores
        parts = {
            "content": lambda: self._content(history),
            "cluster": lambda: self._cluster_scores(history),
            "cf": lambda: self._item_scores(history),
        }
        for name, weight in blend.items():
            if name in parts and weight:
                scores += weight * _unit_max(parts[name]())
        return scores


def _ndcg_of_top(scores, history, items, relevant, k) -> float:
    from driftloop.blueprints.recsys.metrics import ndcg_at_k

    scores = scores.copy()
    scores[history] = -np.inf
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return ndcg_at_k(items[top].tolist(), set(relevant), k)
