"""Top-K ranking metrics with binary relevance, per user segment and overall.

For one user, ``recommended`` is the ranked list the model gave and ``relevant`` the
items the user went on to interact with (minus those seen in training):

- NDCG@K: sum over hits at rank i (0-based) of 1 / log2(i + 2), divided by the same
  sum for an ideal list (min(|relevant|, K) hits at the top);
- Recall@K: hits / |relevant|;
- MAP@K: sum over hits of the precision at that rank, divided by min(|relevant|, K);
- coverage@K: share of the catalogue recommended to at least one evaluated user.

Users without relevant items are left out (nothing to find).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from driftloop.blueprints.recsys.segments import SEGMENTS


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


def evaluate(model, test: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """NDCG/Recall/MAP@k overall and per segment, coverage, user counts, for a fitted model.

    The model knows its training histories (``model.history_of``), so the relevant items
    are the test items each user had not seen in training.
    """
    relevant: dict[str, set[str]] = {}
    for user, items in test.groupby("user")["item"]:
        fresh = set(map(str, items)) - set(model.history_of(str(user)))
        if fresh:
            relevant[str(user)] = fresh
    users = sorted(relevant)
    answers = model.recommend(users, k=k)
    rows = []
    recommended_items: set[str] = set()
    for user, (items, _scores, segment) in zip(users, answers, strict=True):
        recommended_items.update(items)
        truth = relevant[user]
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
        for name in ("ndcg", "recall"):
            if len(part):
                metrics[f"{name}{suffix}_{segment}"] = float(part[name].mean())
    return metrics
