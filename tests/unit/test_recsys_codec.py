"""recsys on the wire: v1/v2 decoding, k out of range named, unknown users served as
anonymous, seen items excluded, click feedback and its live NDCG, drift features."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.codec import InputError, InputTensor
from driftloop.blueprints.feedback import FeedbackError
from tests.unit.test_recsys_models import two_tastes


@pytest.fixture(scope="module")
def codec():
    blueprint = get_blueprint("recsys", warm_min=5, max_k=20)
    model = blueprint.candidates(seed=0)["driftloop"].fit(blueprint.features(two_tastes()))
    return blueprint.codec(model)


def tensor(name, datatype, data):
    return InputTensor(
        name, datatype, np.asarray(data, dtype=object if datatype == "BYTES" else None)
    )


def test_v1_warm_unknown_and_session_users(codec):
    batch = codec.decode_v1(
        [
            {"user_id": "c0", "k": 3},
            {"user_id": "nobody"},
            {"user_id": 7, "recent_items": ["h-item1", "h-item2"], "k": 4},
        ]
    )
    answer = codec.predict(batch)
    warm, unknown, session = answer.instances
    assert warm["segment"] == "warm" and len(warm["item_ids"]) == 3
    assert not set(warm["item_ids"]) & set(codec.model.history_of("c0"))
    assert unknown["segment"] == "anonymous" and len(unknown["item_ids"]) == 10  # default k
    assert session["segment"] == "semi" and not {"h-item1", "h-item2"} & set(session["item_ids"])
    assert answer.labels == ["warm", "anonymous", "semi"]
    ids, scores = answer.tensors[0][2], answer.tensors[1][2]
    assert ids.shape == scores.shape == (3, 10) and ids[0, 3] == "" and scores.dtype == np.float32
    assert batch.summaries[2] == {"user_id": "7", "recent_items": ["h-item1", "h-item2"], "k": 4}


@pytest.mark.parametrize("k", [0, 21, -1, "10", 2.5, True])
def test_k_out_of_range_or_not_an_integer_names_k(codec, k):
    with pytest.raises(InputError, match=r"instances\[0\]\.k must be an integer from 1 to 20"):
        codec.decode_v1([{"user_id": "c0", "k": k}])
    if isinstance(k, int) and not isinstance(k, bool):
        with pytest.raises(InputError, match=r"inputs\[k\] must be an integer from 1 to 20"):
            codec.decode_v2({"user_id": tensor("user_id", "BYTES", [b"c0"]),
                             "k": tensor("k", "INT32", [k])})  # fmt: skip


def test_v2_tensors_and_their_replay(codec):
    batch = codec.decode_v2(
        {
            "user_id": tensor("user_id", "BYTES", [b"c0", b"stranger"]),
            "k": tensor("k", "INT32", [5]),
            "recent_items": tensor("recent_items", "BYTES", [[b"old", b""], [b"c-item1", b""]]),
        }
    )
    assert [s["k"] for s in batch.summaries] == [5, 5]
    assert batch.summaries[1]["recent_items"] == ["c-item1"]
    answer = codec.predict(batch)
    assert [i["segment"] for i in answer.instances] == ["warm", "semi"]
    replay = {t["name"]: tensor(t["name"], t["datatype"], t["data"])
              for t in codec.v2_inputs(batch.summaries)}  # fmt: skip
    assert codec.decode_v2(replay).summaries == batch.summaries
    with pytest.raises(InputError, match="user_id"):
        codec.decode_v2({"k": tensor("k", "INT32", [5])})
    with pytest.raises(InputError, match=r"inputs\[recent_items\]\.shape"):
        users = tensor("user_id", "BYTES", [b"a", b"b"])
        codec.decode_v2(
            {"user_id": users, "recent_items": tensor("recent_items", "BYTES", [[b"x"]] * 3)}
        )


def test_category_filter_keeps_only_those_categories_and_never_seen_items(codec):
    batch = codec.decode_v1(
        [
            {"user_id": "c0", "k": 5, "category": "Horror"},
            {"user_id": "h0", "k": 5, "category": ["Comedy", "Drama"]},
            {"user_id": "c0", "k": 5},
        ]
    )
    assert batch.summaries[0]["category"] == ["Horror"] and "category" not in batch.summaries[2]
    horror, comedy_or_drama, unfiltered = codec.predict(batch).instances
    # a comedy fan asked for horror gets horror films only, none of them seen
    assert horror["item_ids"] and all(i.startswith("h-item") for i in horror["item_ids"])
    assert {i.split("-")[0] for i in comedy_or_drama["item_ids"]} <= {"c", "old", "new"}
    assert not set(comedy_or_drama["item_ids"]) & set(codec.model.history_of("h0"))
    assert not set(horror["item_ids"]) & set(codec.model.history_of("c0"))
    assert all(i.startswith("c-item") for i in unfiltered["item_ids"][:3])


def test_category_filter_over_v2_for_every_user_or_per_user_and_its_replay(codec):
    users = tensor("user_id", "BYTES", [b"c0", b"stranger"])
    batch = codec.decode_v2({"user_id": users, "category": tensor("category", "BYTES", [b"Drama"])})
    answers = codec.predict(batch).instances
    # two Drama items in the catalogue: "old" and "new" (c0 saw "old", and "new" as c0 < 5)
    assert answers[0]["item_ids"] == [] and answers[1]["item_ids"] == ["new", "old"]
    per_user = tensor("category", "BYTES", [[b"Horror", b""], [b"Comedy", b"Drama"]])
    batch = codec.decode_v2({"user_id": users, "category": per_user})
    assert [s.get("category") for s in batch.summaries] == [["Horror"], ["Comedy", "Drama"]]
    replay = {t["name"]: tensor(t["name"], t["datatype"], t["data"])
              for t in codec.v2_inputs(batch.summaries)}  # fmt: skip
    assert codec.decode_v2(replay).summaries == batch.summaries
    with pytest.raises(InputError, match=r"inputs\[category\]\.shape"):
        codec.decode_v2({"user_id": users, "category": tensor("category", "BYTES", [[b"Drama"]])})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Western", r"instances\[0\]\.category: unknown category 'Western'; known: Comedy, Drama"),
        (["Comedy", "Noir"], r"instances\[0\]\.category: unknown category 'Noir'"),
        (3, r"instances\[0\]\.category must be a category name or a list"),
        ([2.5], r"instances\[0\]\.category\[0\] must be a string"),
    ],
)
def test_unknown_or_malformed_category_names_category(codec, value, message):
    with pytest.raises(InputError, match=message):
        codec.decode_v1([{"user_id": "c0", "category": value}])
    with pytest.raises(InputError, match=r"inputs\[category\]: unknown category 'Western'"):
        codec.decode_v2(
            {
                "user_id": tensor("user_id", "BYTES", [b"c0"]),
                "category": tensor("category", "BYTES", [b"Western"]),
            }
        )


def test_click_feedback_and_live_ndcg(codec):
    feedback = get_blueprint("recsys").feedback
    output = {"item_ids": ["a", "b", "c"], "scores": [3, 2, 1], "segment": "warm"}
    assert feedback.parse(["b"], [output]) == (["b"], True)
    assert feedback.parse(["z"], [output]) == (["z"], False)
    with pytest.raises(FeedbackError, match="clicked item ids"):
        feedback.parse("b", [output])
    assert feedback.live_score([output, output], [["a"], ["z"]]) == pytest.approx(0.5)
    # a list nobody clicked scores 0 (a hit-rate drop lowers the live score)
    assert feedback.live_score([output, output], [["a"], []]) == pytest.approx(0.5)
    semi = {"item_ids": ["a", "b"], "scores": [2, 1], "segment": "semi"}
    metrics = feedback.live_metrics([output, output, semi], [["a", "b"], [], ["z"]])
    assert metrics["hit_rate_at_3"] == pytest.approx(1 / 3)
    assert metrics["ctr"] == pytest.approx(2 / 8)
    assert metrics["hit_rate_at_3_warm"] == 0.5 and metrics["ctr_warm"] == pytest.approx(2 / 6)
    assert metrics["hit_rate_at_3_semi"] == 0.0 and metrics["feedback_lists_semi"] == 1
    assert "hit_rate_at_3_anonymous" not in metrics
    # a multi-instance request: one click list per instance
    assert feedback.parse([["z"], ["b"]], [output, semi]) == ([["z"], ["b"]], True)
    rows = get_blueprint("recsys").rows_from_feedback(
        [{"user_id": "u1", "k": 3}, {"user_id": "u1", "k": 3}], [["a", "b"], ["b", "c"]]
    )
    # a user's item once, every click stamped now (the newest behaviour)
    assert rows[["user", "item"]].values.tolist() == [["u1", "a"], ["u1", "b"], ["u1", "c"]]
    assert rows["feedback_source"].tolist() == [0, 0, 1] and rows["timestamp"].nunique() == 1


def test_drift_features_segment_category_cold_users_and_popularity(codec):
    batch = codec.decode_v1(
        [{"user_id": "c0"}, {"user_id": "nobody"}, {"user_id": "x", "recent_items": ["h-item1"]}]
    )
    answer = codec.predict(batch)
    featurizer = get_blueprint("recsys").drift_featurizer(codec.model, None)
    groups = featurizer.transform(batch.model_input, answer.instances)
    assert groups["segment"].ravel().tolist() == [2, 0, 1]
    assert groups["cold_user"].ravel().tolist() == [0, 1, 1]
    genres = codec.model.genres_
    category = groups["category"].ravel().tolist()
    # c0 is a comedy fan, the session is horror, nobody has no items ("none" = 0)
    assert category[1] == 0 and category[0] != category[2] and 0 not in (category[0], category[2])
    assert len(featurizer.categories("category")[0]) == len(genres) + 2
    popularity = groups["popularity"]
    assert popularity.shape == (3, 3) and popularity[1, 0] == 0.0 and popularity[1, 2] == 0.0
    assert (popularity[:, 1] > 0).all()  # every list recommends known items


@pytest.mark.slow  # ~11 s alone, most of it importing the monitor's detectors
def test_drift_reference_from_held_out_interactions(codec):
    """The monitor fits its reference on held-out interaction rows: one request per user."""
    from driftloop.monitor.reference import build_reference

    blueprint = get_blueprint("recsys", warm_min=5)
    rows = two_tastes(seed=1)
    rows = rows.assign(user=rows["user"] + rows.index.map(lambda i: f"-{i % 3}"))
    bundle = build_reference(blueprint, codec.model, rows)
    assert set(bundle.meta["predicted_share"]) <= {"anonymous", "semi", "warm"}
    assert bundle.meta["groups"] == {
        "segment": "categorical",
        "cold_user": "categorical",
        "category": "categorical",
        "popularity": "continuous",
    }


def test_clicks_become_one_interaction_each_in_the_retraining_rows(tmp_path):
    """merge_feedback: a click list gives one row per item, ids <request id>/<n>."""
    from datetime import UTC, datetime

    import pandas as pd

    from driftloop.datasets import write_frame
    from driftloop.store import PredictionRecord, PredictionStore
    from driftloop.training.data_steps import merge_feedback

    store = PredictionStore(f"sqlite:///{tmp_path / 'store.db'}")
    output = {"item_ids": ["a", "b"], "scores": [2.0, 1.0], "segment": "warm"}
    store.insert_predictions(
        [
            PredictionRecord(
                request_id=rid, model_name="m", model_version="1",
                inputs=[{"user_id": user, "recent_items": [], "k": 2}], outputs=[output],
                label="warm", confidence=None, created_at=datetime.now(UTC), latency_ms=1.0,
            )
            for rid, user in (("r1", "u1"), ("r2", "u2"))
        ]
    )  # fmt: skip
    store.add_feedback("r1", value=["a", "z"], correct=True)
    store.add_feedback("r2", value=[], correct=False)  # nothing clicked: no row
    store.close()
    base = get_blueprint("recsys").load(None, None).head(3)
    write_frame(base, tmp_path / "base.parquet")
    summary = merge_feedback(
        tmp_path / "base.parquet", tmp_path / "merged.parquet", "recsys", "m", store.url
    )
    merged = pd.read_parquet(tmp_path / "merged.parquet")
    assert summary["feedback_rows"] == 2 and len(merged) == 5
    clicks = merged[merged["user"] == "u1"]
    assert clicks["id"].tolist() == ["r1/0", "r1/1"] and clicks["item"].tolist() == ["a", "z"]
    assert "feedback_source" not in merged
