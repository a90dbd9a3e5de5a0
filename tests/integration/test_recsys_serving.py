"""recsys end to end without the pipeline: a MovieLens subsample split in time, the
candidates trained and ranked by the shared trainer (MLflow on sqlite), the winner registered
with the blueprint tagged, and served by ``driftloop serve`` (a real KServe ModelServer on
127.0.0.1): v1 and v2 answers for a warm user and an unknown one, seen items excluded, k out
of range a 400 naming k."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from driftloop.blueprints import BlueprintSpec
from driftloop.datasets.interactions import movielens, temporal_split
from tests.integration.conftest_serving import register_blueprint_model, running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "movies"
TOKEN = "r3csys"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SPEC = BlueprintSpec("recsys", {"warm_min": 10, "max_items": 500, "max_k": 50})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("recsys-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    frame = movielens()
    frame = frame[frame["user"].astype(int) <= 120]  # a subsample: 120 users
    registered = register_blueprint_model(
        tracking, NAME, SPEC, frame, candidates=["mostpop", "driftloop"], home=home,
        split=lambda rows: temporal_split(rows, test_share=0.2),
    )  # fmt: skip
    result, train = registered.result, registered.train
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_STORE_URL": f"sqlite:///{home / 'store.db'}",
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
        "DRIFTLOOP_API_TOKEN": TOKEN,
    }
    with ExitStack() as stack:
        predictor = stack.enter_context(running_predictor(NAME, home, env=env))
        http = stack.enter_context(httpx.Client(base_url=predictor.url, timeout=30, headers=AUTH))
        yield result, train, http, tracking


def warm_user(train) -> str:
    counts = train["user"].value_counts()
    return str(counts.index[0])


def test_trained_candidates_are_scored_per_segment(served):
    result, *_ = served
    names = {c.name: c.metrics for c in result.candidates}
    assert set(names) == {"mostpop", "driftloop"}
    for metrics in names.values():
        assert 0 <= metrics["ndcg_at_10"] <= 1 and "users_anonymous" in metrics


def test_v1_warm_and_unknown_users(served):
    result, train, http, _ = served
    user = warm_user(train)
    body = {"instances": [{"user_id": user, "k": 5}, {"user_id": "no-such-user", "k": 3}]}
    response = http.post(f"/v1/models/{NAME}:predict", json=body)
    assert response.status_code == 200, response.text
    warm, unknown = response.json()["predictions"]
    assert warm["segment"] == "warm" and len(warm["item_ids"]) == 5
    assert warm["scores"] == sorted(warm["scores"], reverse=True)
    seen = set(train.loc[train["user"] == user, "item"])
    assert not set(warm["item_ids"]) & seen
    assert unknown["segment"] == "anonymous" and len(unknown["item_ids"]) == 3
    expected = result.model.recommend([user], k=5)[0][0]
    assert warm["item_ids"] == expected


def test_v2_warm_and_unknown_users(served):
    _, train, http, _ = served
    user = warm_user(train)
    body = {
        "inputs": [
            {"name": "user_id", "datatype": "BYTES", "shape": [2], "data": [user, "stranger"]},
            {"name": "k", "datatype": "INT32", "shape": [1], "data": [4]},
        ]
    }
    response = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["item_ids"]["shape"] == [2, 4] and outputs["scores"]["datatype"] == "FP32"
    assert outputs["segment"]["data"] == ["warm", "anonymous"]
    seen = set(train.loc[train["user"] == user, "item"])
    assert not set(outputs["item_ids"]["data"][:4]) & seen


def test_k_out_of_range_is_a_400_naming_k(served):
    _, _, http, _ = served
    response = http.post(
        f"/v1/models/{NAME}:predict", json={"instances": [{"user_id": "1", "k": 51}]}
    )
    assert response.status_code == 400 and "k must be an integer from 1 to 50" in response.text
    body = {
        "inputs": [
            {"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["1"]},
            {"name": "k", "datatype": "INT32", "shape": [1], "data": [0]},
        ]
    }
    response = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert response.status_code == 400 and "inputs[k]" in response.text


def test_empty_history_and_bad_k_answer_sensibly_never_500(served):
    _, _, http, _ = served
    body = {
        "instances": [
            {"user_id": "", "recent_items": []},
            {"user_id": "new", "recent_items": ["", "not-an-item"]},
        ]
    }
    response = http.post(f"/v1/models/{NAME}:predict", json=body)
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["segment"] for a in answers] == ["anonymous", "anonymous"]
    assert all(len(a["item_ids"]) == 10 for a in answers)
    for k in ("10", 2.5, None, -1):
        instance = {"user_id": "1", "k": k} if k is not None else {"user_id": "1", "k": [3]}
        response = http.post(f"/v1/models/{NAME}:predict", json={"instances": [instance]})
        assert response.status_code == 400 and "instances[0].k" in response.text, response.text


def test_session_only_user_over_v2_gets_semi_without_the_session_items(served):
    _, train, http, _ = served
    session = train["item"].value_counts().index[:3].tolist()
    body = {
        "inputs": [
            {"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["new-visitor"]},
            {"name": "recent_items", "datatype": "BYTES", "shape": [3], "data": session},
            {"name": "k", "datatype": "INT32", "shape": [1], "data": [10]},
        ]
    }
    response = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["segment"]["data"] == ["semi"]
    assert not set(outputs["item_ids"]["data"]) & set(session)


def test_click_feedback_is_checked_and_stored(served):
    _, train, http, _ = served
    body = http.post(
        f"/v1/models/{NAME}:predict", json={"instances": [{"user_id": warm_user(train)}]}
    ).json()
    request_id, served_items = body["request_id"], body["predictions"][0]["item_ids"]
    hit = http.post(f"/v1/feedback/{request_id}", json={"value": served_items[:1]}, headers=AUTH)
    assert hit.status_code == 200 and hit.json()["correct"] is True, hit.text
    miss = http.post(f"/v1/feedback/{request_id}", json={"value": ["nope"]}, headers=AUTH)
    assert miss.status_code == 200 and miss.json()["correct"] is False, miss.text
    bad = http.post(f"/v1/feedback/{request_id}", json={"value": 3}, headers=AUTH)
    assert bad.status_code == 422 and "clicked item ids" in bad.text


def test_registered_version_loads_with_plain_mlflow_pyfunc(served):
    import mlflow.pyfunc
    import pandas as pd

    from driftloop.registry import scoped_tracking_uri

    result, train, _, tracking = served
    with scoped_tracking_uri(tracking):
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    user = warm_user(train)
    # the signature declares every input the predictor takes (an empty session is [])
    out = model.predict(pd.DataFrame({"user_id": [user], "recent_items": [[]], "k": [5]}))
    assert out.iloc[0].tolist() == result.model.recommend([user], k=5)[0][0]


def genres_of(train) -> dict[str, set[str]]:
    rows = train.drop_duplicates("item")
    return {
        str(i): set(str(g).split("|")) for i, g in zip(rows["item"], rows["genres"], strict=True)
    }


def test_category_filters_over_v1_and_v2_exclude_seen_items(served):
    _, train, http, _ = served
    user, genres = warm_user(train), genres_of(train)
    seen = set(train.loc[train["user"] == user, "item"].astype(str))
    body = {
        "instances": [
            {"user_id": user, "k": 5, "category": "Documentary"},
            {"user_id": "stranger", "k": 5, "category": ["Horror", "Western"]},
        ]
    }
    response = http.post(f"/v1/models/{NAME}:predict", json=body)
    assert response.status_code == 200, response.text
    documentaries, horror_or_western = response.json()["predictions"]
    assert documentaries["item_ids"] and not set(documentaries["item_ids"]) & seen
    assert all("Documentary" in genres[i] for i in documentaries["item_ids"])
    assert len(horror_or_western["item_ids"]) == 5
    assert all(genres[i] & {"Horror", "Western"} for i in horror_or_western["item_ids"])
    body = {
        "inputs": [
            {"name": "user_id", "datatype": "BYTES", "shape": [2], "data": [user, "stranger"]},
            {"name": "k", "datatype": "INT32", "shape": [1], "data": [4]},
            {"name": "category", "datatype": "BYTES", "shape": [1], "data": ["Animation"]},
        ]
    }
    response = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    ids = [i for i in outputs["item_ids"]["data"] if i]
    assert ids and all("Animation" in genres[i] for i in ids)
    assert not set(outputs["item_ids"]["data"][:4]) & seen


def test_unknown_category_is_a_400_naming_category_and_no_match_an_empty_list(served):
    _, train, http, _ = served
    body = {"instances": [{"user_id": "1", "category": ["Comedy", "Telenovela"]}]}
    response = http.post(f"/v1/models/{NAME}:predict", json=body)
    assert response.status_code == 400, response.text
    assert "instances[0].category: unknown category 'Telenovela'" in response.text
    body = {
        "inputs": [
            {"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["1"]},
            {"name": "category", "datatype": "BYTES", "shape": [1], "data": ["Telenovela"]},
        ]
    }
    response = http.post(f"/v2/models/{NAME}/infer", json=body)
    assert response.status_code == 400 and "inputs[category]" in response.text, response.text
    # every item of a category the user has already seen: nothing left to recommend
    genres = genres_of(train)
    counts = {}
    for items in genres.values():
        for genre in items:
            counts[genre] = counts.get(genre, 0) + 1
    rare = min((g for g in counts if g), key=counts.get)
    rare_items = [i for i, gs in genres.items() if rare in gs]
    body = {"instances": [{"user_id": "anyone", "recent_items": rare_items, "category": rare}]}
    response = http.post(f"/v1/models/{NAME}:predict", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["item_ids"] == []


def test_the_generic_v2_client_sends_what_the_metadata_declares(served):
    """driftloop's own OIP client (the smoke serve's) sends every declared input: the
    optional category filter is taken but not declared, so the smoke-serve samples (a user,
    a session and k) still make a complete request."""
    from driftloop.serving.client import PredictorClient

    _, train, http, _ = served
    with PredictorClient(str(http.base_url), token=TOKEN) as client:
        declared = [i["name"] for i in client.metadata(NAME)["inputs"]]
        assert declared == ["user_id", "recent_items", "k"]
        instances = [{"user_id": warm_user(train), "recent_items": [""], "k": 3}]
        (prediction,) = client.predict_v2(NAME, instances)
    assert prediction.output["segment"] == "warm" and len(prediction.output["item_ids"]) == 3


def test_smoke_serve_answers_the_pipelines_samples(served, monkeypatch):
    """The training pipeline's smoke-serve step on this version: the blueprint's input
    example (a training user and an unknown one, each with a one-item session) as samples,
    sent by the generic client to a predictor in a subprocess."""
    import json

    from mlflow import MlflowClient

    from driftloop.blueprints import get_blueprint
    from driftloop.serving.smoke import smoke_serve

    _, train, _, tracking = served
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    version = MlflowClient(tracking).get_model_version_by_alias(NAME, "champion").version
    example = get_blueprint(SPEC).input_example(train)
    samples = json.loads(example.to_json(orient="records"))
    result = smoke_serve(f"models:/{NAME}/{version}", samples, timeout_s=120)
    assert result["ok"] is True and result["model_version"] == str(version)
    assert [p["segment"] for p in result["predictions"]] == ["warm", "semi"]
