"""recsys end to end without the pipeline: a MovieLens subsample split in time, the
candidates trained and ranked by the shared trainer (MLflow on sqlite), the winner registered
with the blueprint tagged, and served by ``driftloop serve`` (a real KServe ModelServer on
127.0.0.1): v1 and v2 answers for a warm user and an unknown one, seen items excluded, k out
of range a 400 naming k."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.datasets.interactions import movielens, temporal_split
from tests.integration.conftest_serving import running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "movies"
SPEC = BlueprintSpec("recsys", {"warm_min": 10, "max_items": 800, "max_k": 50})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from driftloop.lineage import version_tags
    from driftloop.registry import ModelRegistry, scoped_tracking_uri
    from driftloop.settings import Settings
    from driftloop.training.candidates import train_candidates

    home = tmp_path_factory.mktemp("recsys-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    frame = movielens()
    frame = frame[frame["user"].astype(int) <= 200]  # a subsample: 200 users
    train, test = temporal_split(frame, test_share=0.2)
    blueprint = get_blueprint(SPEC)
    with scoped_tracking_uri(tracking):
        result = train_candidates(
            blueprint, train, test, seed=7, experiment="recsys-tests",
            settings=Settings(home=home), candidates=["mostpop", "driftloop"],
        )  # fmt: skip
    registry = ModelRegistry(tracking)
    primary = blueprint.primary_metric
    tags = version_tags(
        dataset_fingerprint="test",
        split_fingerprints={},
        metric_name=primary,
        metric_value=result.val_metrics[primary],
        metric_split="val",
        blueprint=blueprint.spec,
        flavour=blueprint.flavour,
    )
    version = registry.register(NAME, result.run_id, tags=tags)
    registry.set_alias(NAME, "champion", version)
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_STORE_URL": f"sqlite:///{home / 'store.db'}",
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    with ExitStack() as stack:
        predictor = stack.enter_context(running_predictor(NAME, home, env=env))
        http = stack.enter_context(httpx.Client(base_url=predictor.url, timeout=30))
        yield result, train, http


def warm_user(train) -> str:
    counts = train["user"].value_counts()
    return str(counts.index[0])


def test_trained_candidates_are_scored_per_segment(served):
    result, _, _ = served
    names = {c.name: c.metrics for c in result.candidates}
    assert set(names) == {"mostpop", "driftloop"}
    for metrics in names.values():
        assert 0 <= metrics["ndcg_at_10"] <= 1 and "users_anonymous" in metrics


def test_v1_warm_and_unknown_users(served):
    result, train, http = served
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
    _, train, http = served
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
    _, _, http = served
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
