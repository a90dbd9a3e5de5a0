"""Top-K ranking metrics with binary relevance, per user segment and overall.

For one user, ``recommended`` is the ranked list the model gave and ``relevant`` the
items the user went on to interact with (minus those seen in training):

- NDCG@K: sum over hits at rank i (0-based) of 1 / log2(i + 2), divided by the same
  sum for an ideal list (min(|relevant|, K) hits at the top);
- Recall@K: hits / |relevant|;
- MAP@K: sum over hits of the precision at that rank, divided by min(|relevant|, K);
- coverage@K: share of the catalogue recommended to at least one evaluated user.

Users are asked in given-N views (``evaluation_views``); a view without relevant items is
left out (nothing to find).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.blueprints.recsys.segments import ANONYMOUS, SEGMENTS, SEMI, WARM


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    discounts = _discounts(k)
    dcg = sum(discounts[i] for i, item in enumerate(recommended[:k]) if item in relevant)
    return float(dcg / discounts[: min(len(relevant), k)].sum())


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(recommended[:k]) & relevant) / len(relevant)


def map_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, item in enumerate(recommended[:k]):
        if item in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant), k)


def relevant_by_user(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, set[str]]:
    """Each test user's held-out items that they had not interacted with in training."""
    seen = train.groupby("user")["item"].agg(set).to_dict()
    relevant: dict[str, set[str]] = {}
    for user, items in test.groupby("user")["item"]:
        fresh = set(items) - seen.get(user, set())
        if fresh:
            relevant[str(user)] = fresh
    return relevant


@dataclass(frozen=True)
class View:
    """One question asked of a recommender: ``user`` with ``session`` (items revealed from
    the start of their held-out period) should find ``relevant`` (the rest of it)."""

    user: str
    session: tuple[str, ...]
    relevant: frozenset[str]
    segment: str


def _stable_fraction(user: str) -> float:
    """A user's fixed place in [0, 1) (crc32): which session length they are asked with."""
    return zlib.crc32(user.encode()) / 2**32


def evaluation_views(
    histories: Callable[[str], Sequence[str]],
    test: pd.DataFrame,
    warm_min: int,
    catalogue: Container[str] | None = None,
) -> list[View]:
    """Given-N views of the held-out interactions (Breese et al. 1998), per segment.

    A global temporal split leaves few test users with a short training history (on
    MovieLens: 1 of 147), so short histories are also made the way they arise in serving:
    a user new after the cut-off is asked once with nothing known (anonymous), once after
    their first few held-out interactions (semi: 1 .. warm_min - 1 known in all) and, with
    enough of them, once after warm_min .. 2 warm_min - 1 (warm); a user with a training
    history is asked with it, and a short one is also topped up to warm by the same rule.
    The session length within a segment is fixed per user (crc32 of the id), never by what
    the models answer; the relevant items are the later held-out ones not yet seen. Only
    items in ``catalogue`` (the training items; default: all) count towards a history's
    length, as they do in serving (a model cannot use an item it has never seen).
    """
    if warm_min < 2:
        raise ValueError(f"warm_min must be at least 2, got {warm_min}")
    views: list[View] = []
    ordered = test.sort_values(["timestamp", "item"], kind="stable")
    for user, items in ordered.groupby("user", sort=True)["item"]:
        user = str(user)
        known = set(map(str, histories(user)))
        fresh = [i for i in dict.fromkeys(map(str, items)) if i not in known]
        place = _stable_fraction(user)
        targets = []  # (segment, total history length asked with)
        if not known:
            targets.append((ANONYMOUS, 0))
        if len(known) < warm_min:
            targets.append((SEMI, max(len(known), 1 + int(place * (warm_min - 1)))))
            targets.append((WARM, warm_min + int(place * warm_min)))
        else:
            targets.append((WARM, len(known)))
        # counted[i]: catalogue items among the first i fresh ones
        counted = np.cumsum([0] + [catalogue is None or i in catalogue for i in fresh])
        for segment, total in targets:
            needed = total - len(known)
            if needed > counted[-1]:
                continue
            revealed = int(np.searchsorted(counted, needed)) if needed > 0 else 0
            relevant = frozenset(fresh[revealed:])
            if relevant:
                views.append(View(user, tuple(fresh[:revealed]), relevant, segment))
    return views


def evaluate(model, test: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """NDCG/Recall/MAP@k overall (mean over views) and per segment, coverage and view counts
    of a fitted model on the given-N views of ``test`` (``evaluation_views``).

    The model knows its training histories (``model.history_of``) and its ``warm_min``.
    """
    views = evaluation_views(model.history_of, test, int(model.warm_min), model.item_index_)
    answers = model.recommend([v.user for v in views], [v.session for v in views], k=k)
    rows = []
    recommended_items: set[str] = set()
    for view, (items, _scores, segment) in zip(views, answers, strict=True):
        if segment != view.segment:  # the model's segmenting must agree with the protocol's
            raise RuntimeError(f"view of {view.user} is {view.segment}, model said {segment}")
        recommended_items.update(items)
        truth = set(view.relevant)
        rows.append(
            (segment, ndcg_at_k(items, truth, k), recall_at_k(items, truth, k),
             map_at_k(items, truth, k))
        )  # fmt: skip
    table = pd.DataFrame(rows, columns=["segment", "ndcg", "recall", "map"])
    metrics: dict[str, float] = {}
    suffix = f"_at_{k}"
    for name in ("ndcg", "recall", "map"):
        metrics[name + suffix] = float(table[name].mean()) if len(table) else 0.0
    metrics["coverage" + suffix] = len(recommended_items) / max(len(model.items_), 1)
    metrics["users"] = float(len(table))
    for segment in SEGMENTS:
        part = table[table["segment"] == segment]
        metrics[f"users_{segment}"] = float(len(part))
        for name in ("ndcg", "recall", "map"):
            if len(part):
                metrics[f"{name}{suffix}_{segment}"] = float(part[name].mean())
    return metrics
