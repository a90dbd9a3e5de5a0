"""recsys: the warm users' LambdaRank re-ranker, trained one period before the validation
period, kept only when it beats the warm blend there, and served from a pickled model."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.recsys.metrics import evaluation_views
from driftloop.blueprints.recsys.models import SegmentedRecommender
from driftloop.datasets.interactions import temporal_split, with_interaction_ids

DAY = 86_400.0


def three_tastes(seed: int = 0, genres: bool = True) -> pd.DataFrame:
    """120 users in three tastes of 30 items each, 15 interactions apiece spread over 400
    days: what a user takes next is an item of their taste, whatever is popular overall."""
    rng = np.random.default_rng(seed)
    rows = []
    for taste in "abc":
        for u in range(40):
            days = np.sort(rng.uniform(0, 400, size=15))
            for item, day in zip(rng.choice(30, size=15, replace=False), days, strict=True):
                rows.append((f"{taste}{u}", f"{taste}-item{item}", day * DAY, taste.upper()))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp", "genres"]).assign(weight=1.0)
    if not genres:  # interactions without item features: no genre content at all
        frame["genres"] = ""
    return get_blueprint("recsys").features(with_interaction_ids(frame))


def test_ranker_is_judged_on_the_validation_period_and_kept_only_if_better():
    frame = three_tastes()
    model = SegmentedRecommender(warm_min=5, clusters=3, components=2).fit(frame)
    scores = model.validation_
    ranker_score = scores["validation_ndcg_at_10_warm_ranker"]  # it was trained and judged
    better = ranker_score > scores["validation_ndcg_at_10_warm"]
    assert model.warm_model_ == ("ranker" if better else "blend")
    assert (model.ranker_ is not None) == better
    # users who keep to their tastes: CF features carry from one period to the next
    assert model.warm_model_ == "ranker"


@pytest.mark.slow
def test_ranker_choice_is_seeded_and_can_be_switched_off():
    frame = three_tastes()
    model = SegmentedRecommender(warm_min=5, clusters=3, components=2).fit(frame)
    again = SegmentedRecommender(warm_min=5, clusters=3, components=2).fit(frame)
    assert again.validation_ == model.validation_ and again.warm_model_ == model.warm_model_
    users = ["a1", "b2", "c3"]
    assert again.recommend(users, k=10) == model.recommend(users, k=10)
    off = SegmentedRecommender(warm_min=5, clusters=3, components=2, warm_ranker=False)
    off.fit(frame)
    assert off.ranker_ is None and off.warm_model_ == "blend"
    assert "validation_ndcg_at_10_warm_ranker" not in off.validation_


@pytest.mark.parametrize("genres", [True, False])
def test_ranker_serves_unseen_items_of_the_users_taste_and_pickles(genres):
    frame = three_tastes(genres=genres)
    early, later = temporal_split(frame, test_share=0.3)
    model = SegmentedRecommender(warm_min=5, clusters=3, components=2, tune=False).fit(early)
    views = evaluation_views(model.history_of, later, 5, model.item_index_)
    asked = [(model.history_codes(v.user, v.session), v.relevant) for v in views]
    model.ranker_ = model._trained_ranker([(model, asked)])
    assert model.ranker_ is not None
    users = ["a1", "b2", "c3"]
    answers = model.recommend(users, k=5)
    for user, (items, scores, segment) in zip(users, answers, strict=True):
        assert segment == "warm" and scores == sorted(scores, reverse=True)
        assert not set(items) & set(model.history_of(user))
        assert sum(item.startswith(f"{user[0]}-item") for item in items) >= 4
    restored = pickle.loads(pickle.dumps(model))
    assert restored.recommend(users, k=5) == answers
    if genres:  # a category filter falls back to the blend beyond the ranked candidates
        ((items, _, _),) = model.recommend(["a1"], k=40, categories=[["B"]])
        assert items and all(item.startswith("b-item") for item in items)
