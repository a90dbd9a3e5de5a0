"""recsys: segments, the temporal split, ranking metrics on hand-checked lists, the
interactions reader, and the segment-routed recommender on a two-taste toy catalogue."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.recsys.metrics import map_at_k, ndcg_at_k, recall_at_k
from driftloop.blueprints.recsys.models import (
    EASE,
    ItemKNN,
    MostPopular,
    RecentPopular,
    SegmentedRecommender,
)
from driftloop.blueprints.recsys.segments import segment_of
from driftloop.datasets.errors import DatasetValidationError
from driftloop.datasets.interactions import read_interactions, temporal_split, with_interaction_ids

DAY = 86_400.0


def two_tastes(seed: int = 0) -> pd.DataFrame:
    """Comedy fans c-users and horror fans h-users, 15 items each; one old blockbuster
    ("old") everyone saw long ago, and a recent hit ("new") a few saw lately."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, genre in (("c", "Comedy"), ("h", "Horror")):
        for u in range(12):
            for item in rng.choice(15, size=10, replace=False):
                rows.append((f"{group}{u}", f"{group}-item{item}", 1000 * DAY + u * DAY, genre))
    for u in range(12):
        rows.append((f"c{u}", "old", 10 * DAY, "Drama"))
        rows.append((f"h{u}", "old", 10 * DAY, "Drama"))
    for u in range(5):
        rows.append((f"c{u}", "new", 1020 * DAY, "Drama"))
        rows.append((f"h{u}", "new", 1020 * DAY, "Drama"))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp", "genres"]).assign(weight=1.0)
    return with_interaction_ids(frame)


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return get_blueprint("recsys").features(frame)


# --- segments and split -------------------------------------------------------------------
def test_segments_follow_history_length_and_thresholds():
    assert [segment_of(n) for n in (0, 1, 9, 10, 500)] == [
        "anonymous", "semi", "semi", "warm", "warm",
    ]  # fmt: skip
    assert [segment_of(n, warm_min=3) for n in (0, 2, 3)] == ["anonymous", "semi", "warm"]
    with pytest.raises(ValueError, match="warm_min"):
        segment_of(1, warm_min=1)


def test_temporal_split_is_global_in_time():
    frame = two_tastes()
    train, test = temporal_split(frame, test_share=0.25)
    assert train["timestamp"].max() < test["timestamp"].min()
    assert len(train) + len(test) == len(frame)
    cut = 500 * DAY
    train, test = temporal_split(frame, cutoff=cut)
    assert (train["timestamp"] < cut).all() and (test["timestamp"] >= cut).all()
    with pytest.raises(DatasetValidationError, match="both sides"):
        temporal_split(frame, cutoff=0)


# --- metrics --------------------------------------------------------------------------------
def test_metrics_on_a_hand_checked_list():
    recommended, relevant = ["a", "b", "c"], {"b", "d"}
    # DCG = 1/log2(3); ideal DCG (2 relevant) = 1 + 1/log2(3)
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(expected)
    assert ndcg_at_k(["b", "d", "x"], relevant, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], relevant, 2) == 0.0
    assert recall_at_k(recommended, relevant, 3) == 0.5
    assert recall_at_k(recommended, relevant, 1) == 0.0  # "b" is at rank 2
    assert map_at_k(recommended, relevant, 3) == pytest.approx((1 / 2) / 2)
    assert map_at_k(["b", "d"], relevant, 3) == pytest.approx(1.0)


def test_score_reports_every_segment_and_overall():
    frame = two_tastes()
    # users c11/h11 saw only "old" before the cutoff (semi); "fresh" comes after it
    train, test = temporal_split(frame, cutoff=1011 * DAY)
    fresh = pd.DataFrame(
        [{"id": "f", "user": "fresh", "item": "old", "timestamp": 1030 * DAY, "weight": 1.0}]
    )
    test = pd.concat([test, fresh], ignore_index=True)
    blueprint = get_blueprint("recsys", warm_min=5)
    model = blueprint.candidates(seed=0)["driftloop"].fit(blueprint.features(train))
    metrics = blueprint.score(model, test)
    assert {"ndcg_at_10", "recall_at_10", "map_at_10", "coverage_at_10"} <= set(metrics)
    assert metrics["users"] == sum(metrics[f"users_{s}"] for s in ("anonymous", "semi", "warm"))
    assert metrics["users_anonymous"] == 1 and metrics["users_semi"] == 2
    assert metrics["users_warm"] >= 1
    assert 0 < metrics["ndcg_at_10"] <= 1


# --- reader ----------------------------------------------------------------------------------
def test_interactions_file_columns_detected_or_named(tmp_path):
    path = tmp_path / "clicks.csv"
    pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": ["x", "y", "x"],
            "ts": ["2024-01-01", "2024-01-02 10:00", "2024-01-03"],
            "rating": [5, 3, None],
        }
    ).to_csv(path, index=False)
    frame = read_interactions(path)
    assert list(frame.columns) == ["id", "user", "item", "timestamp", "weight", "genres"]
    assert frame["user"].tolist() == ["1", "1", "2"]
    assert frame["weight"].tolist() == [5.0, 3.0, 1.0]
    assert frame["timestamp"].is_monotonic_increasing and frame["id"].is_unique
    named = read_interactions(path, user_column="item_id", item_column="user_id")
    assert named["user"].tolist() == ["x", "y", "x"]
    with pytest.raises(DatasetValidationError, match="--user-column: no column 'who'"):
        read_interactions(path, user_column="who")
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(path, index=False)
    with pytest.raises(DatasetValidationError, match="--user-column"):
        read_interactions(path)


# --- routing and exclusion ------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_model():
    # given weights (tune=False): the toy catalogue is too small for a validation period
    model = SegmentedRecommender(
        warm_min=5, clusters=2, components=2, half_life_days=30, tune=False,
        cf_weight=2.0, cluster_weight=2.0, content_weight=0.5,
    )  # fmt: skip
    return model.fit(features(two_tastes()))


def test_routes_by_segment(toy_model):
    (warm, _, s_warm), (semi, _, s_semi), (anon, _, s_anon) = toy_model.recommend(
        ["c0", "session", "stranger"], [[], ["h-item1", "h-item2"], []], k=5
    )
    assert (s_warm, s_semi, s_anon) == ("warm", "semi", "anonymous")
    # warm comedy fan: comedies; semi horror session: horror (its cluster's popular items)
    assert all(item.startswith("c-item") for item in warm)
    assert all(item.startswith("h-item") for item in semi[:4])
    # anonymous: the recent hit before the all-time blockbuster
    assert anon[0] == "new" and "old" not in anon
    most_popular = MostPopular().fit(features(two_tastes())).recommend(["stranger"], k=5)[0][0]
    assert most_popular[0] == "old"


def test_seen_and_recent_items_are_never_recommended(toy_model):
    seen = set(toy_model.history_of("c0"))
    assert seen
    for model in (toy_model, MostPopular(), ItemKNN(), EASE(), RecentPopular()):
        if model is not toy_model:
            model.fit(features(two_tastes()))
        (items, scores, _), (session_items, _, _) = model.recommend(
            ["c0", "nobody"], [[], ["old", "new"]], k=40
        )
        assert not set(items) & seen
        assert not {"old", "new"} & set(session_items)
        assert scores == sorted(scores, reverse=True)
        assert len(items) == len(model.items_) - len(seen)  # k beyond the unseen: all of them


def test_predict_returns_item_ids_for_pyfunc(toy_model):
    out = toy_model.predict(pd.DataFrame({"user_id": ["c0", "zz"], "k": [3, 2]}))
    assert out.shape == (2, 3) and out[1, 2] == ""


def test_g1_news_clicks_with_the_article_catalogue(tmp_path):
    """The G1 news schema (clicks with epoch milliseconds; articles with categories) reads
    with no column options, and the articles' categories become the items' content."""
    rng = np.random.default_rng(3)
    start_ms = 1_507_000_000_000
    clicks = pd.DataFrame(
        {
            "user_id": rng.integers(0, 30, 300),
            "session_id": rng.integers(0, 10**6, 300),
            "session_start": start_ms,
            "click_article_id": rng.integers(0, 40, 300),
            "click_timestamp": start_ms + np.sort(rng.integers(0, 7 * 86_400_000, 300)),
        }
    )
    articles = pd.DataFrame(
        {
            "article_id": range(40),
            "category_id": [281 + i % 4 for i in range(40)],
            "created_at_ts": start_ms - 86_400_000,
            "words_count": 180,
        }
    )
    clicks.to_csv(tmp_path / "clicks.csv", index=False)
    articles.to_csv(tmp_path / "articles_metadata.csv", index=False)
    blueprint = get_blueprint("recsys", items=str(tmp_path / "articles_metadata.csv"))
    frame = blueprint.load(None, str(tmp_path / "clicks.csv"))
    assert frame["timestamp"].min() == pytest.approx(start_ms / 1000, abs=7 * 86_400)
    assert set(frame["genres"]) == {"281", "282", "283", "284"}
    row = frame.iloc[0]
    assert row["genres"] == str(281 + int(row["item"]) % 4)
    train, test = temporal_split(frame)
    model = blueprint.candidates(seed=0)["driftloop"].fit(blueprint.features(train))
    assert model.genres_ == ["281", "282", "283", "284"]
    assert 0 <= blueprint.score(model, test)["ndcg_at_10"] <= 1


# --- given-N views, ALS and the tuned blend --------------------------------------------------
def test_given_n_views_reveal_the_start_of_a_new_users_held_out_period():
    from driftloop.blueprints.recsys.metrics import evaluation_views

    test = pd.DataFrame(
        {"user": ["new"] * 30 + ["old"] * 3, "item": [f"i{n}" for n in range(30)] + ["a", "b", "z"],
         "timestamp": list(range(30)) + [5, 6, 7]}
    )  # fmt: skip
    histories = {"old": [f"h{n}" for n in range(12)] + ["a"]}
    views = evaluation_views(lambda u: histories.get(u, []), test, warm_min=5)
    by = {(v.user, v.segment): v for v in views}
    assert set(by) == {("new", "anonymous"), ("new", "semi"), ("new", "warm"), ("old", "warm")}
    assert by["new", "anonymous"].session == () and len(by["new", "anonymous"].relevant) == 30
    semi, warm = by["new", "semi"], by["new", "warm"]
    assert 1 <= len(semi.session) <= 4 and 5 <= len(warm.session) <= 9
    # the session is the start in time; the rest is what must be found
    assert semi.session == tuple(f"i{n}" for n in range(len(semi.session)))
    assert not set(semi.session) & semi.relevant and len(semi.relevant) == 30 - len(semi.session)
    assert by["old", "warm"].relevant == {"b", "z"}  # "a" was seen in training
    # items a model never saw do not count towards a session's length
    only_known = evaluation_views(lambda u: [], test, warm_min=5, catalogue={"i3", "i4"})
    assert {v.segment for v in only_known if v.user == "new"} == {"anonymous", "semi"}


def test_als_answers_session_only_users_from_their_items():
    from driftloop.blueprints.recsys.models import ALS

    model = ALS(factors=8, iterations=5, warm_min=5).fit(features(two_tastes()))
    ((items, scores, segment),) = model.recommend(["someone"], [["h-item1", "h-item2", "h-item3"]])
    assert segment == "semi" and scores == sorted(scores, reverse=True)
    assert sum(item.startswith("h-item") for item in items[:5]) >= 4


def test_tuned_blend_is_chosen_on_the_training_window_only():
    frame = features(two_tastes())
    model = SegmentedRecommender(warm_min=5, clusters=2, components=2).fit(frame)
    assert set(model.blend_) == {"anonymous", "semi", "warm"}
    assert {k for k in model.validation_ if k.startswith("validation_ndcg")}
    # the same rows give the same blend (no randomness in the choice)
    again = SegmentedRecommender(warm_min=5, clusters=2, components=2).fit(frame)
    assert again.blend_ == model.blend_
