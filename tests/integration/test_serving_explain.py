"""Per-request explanations from a real predictor (``driftloop serve``: KServe ModelServer on
loopback) for a registered tabular model (penguins, linear: explained against the background
its training run logged) and a sentiment model (per word): ``POST /v1/models/NAME:explain``
and ``POST /v2/models/NAME/explain`` answer the prediction and the top-k contributions, equal
to what the explainer says in-process; the same 400s as predict for bad input; 501 naming the
model while its version cannot be explained; the token rule of predict; nothing stored."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.store import PredictionStore
from driftloop.training.explain import load_background, log_global_importance
from tests.integration.conftest_serving import (
    NEGATIVE,
    POSITIVE,
    RegisteredBlueprintModel,
    register_blueprint_model,
    register_text_model,
    running_predictor,
    table_frame,
    train_text_model,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "expl4in"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Predictor:
    name: str
    http: httpx.Client
    store_url: str


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("explain-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    frame, _ = table_frame("penguins")
    penguins = register_blueprint_model(
        tracking,
        "penguins",
        BlueprintSpec("tabular", {"target": "species"}),
        frame,
        candidates=["logistic_regression"],
        home=home,
    )
    register_text_model(tracking, "sentiment")
    predictors = {}
    with ExitStack() as stack:
        for name in ("penguins", "sentiment"):
            store_url = f"sqlite:///{home / f'store-{name}.db'}"
            env = {
                "DRIFTLOOP_HOME": str(home),
                "MLFLOW_TRACKING_URI": tracking,
                "DRIFTLOOP_STORE_URL": store_url,
                "DRIFTLOOP_API_TOKEN": TOKEN,
                "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
            }
            predictor = stack.enter_context(running_predictor(name, home, env=env))
            http = stack.enter_context(httpx.Client(base_url=predictor.url, timeout=30))
            predictors[name] = Predictor(name, http, store_url)
        yield {"tracking": tracking, "registered": penguins, **predictors}


def post(predictor: Predictor, path: str, body, headers=AUTH) -> httpx.Response:
    return predictor.http.post(path, json=body, headers=headers)


def penguin_rows(registered: RegisteredBlueprintModel, count: int) -> list[dict]:
    features = registered.blueprint.features(registered.val)
    picked = features[features.notna().all(axis=1)].head(count)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in picked.to_dict(orient="records")
    ]


def v2_columns(rows: list[dict]) -> list[dict]:
    return [
        {
            "name": column,
            "datatype": "BYTES" if isinstance(rows[0][column], str) else "FP64",
            "shape": [len(rows)],
            "data": [row[column] for row in rows],
        }
        for column in rows[0]
    ]


def run_id_of(tracking: str, name: str, version: str) -> str:
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    return client.get_model_version(name, version).run_id


def check_sums(explanation: dict) -> None:
    shown = sum(c["contribution"] for c in explanation["contributions"])
    assert explanation["base_value"] + shown + explanation["rest"] == pytest.approx(
        explanation["value"], abs=1e-9
    )


def test_tabular_explain_v1_and_v2(served):
    predictor, registered, tracking = served["penguins"], served["registered"], served["tracking"]
    rows = penguin_rows(registered, 4)
    path = "/v1/models/penguins:explain"

    # a linear model explains against the background its training run logs: none yet
    response = post(predictor, path, {"instances": rows})
    assert response.status_code == 501, response.text
    error = response.json()["error"]
    assert "model penguins version" in error and "background" in error

    run_id = run_id_of(tracking, "penguins", registered.version)
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    logged = log_global_importance(
        run_id, registered.blueprint, registered.model, registered.val, client=client
    )
    assert logged is not None and logged.method == "linear SHAP"

    response = post(predictor, path, {"instances": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "penguins" and body["model_version"] == registered.version
    assert body["method"] == "linear SHAP"
    assert body["request_id"] == response.headers["x-request-id"]
    explanations = body["explanations"]
    assert len(explanations) == len(rows)

    # the same as the explainer in-process, with the background the predictor read
    frame = pd.DataFrame(rows)
    labels = [str(label) for label in registered.model.predict(frame)]
    explainer = registered.blueprint.explainer(registered.model, load_background(run_id, tracking))
    local = explainer.explain(frame, labels)
    columns = list(frame.columns)
    for explanation, attribution, label in zip(explanations, local, labels, strict=True):
        assert explanation["prediction"]["label"] == label
        assert explanation["explained"] == f"log-odds of {label}"
        assert len(explanation["contributions"]) == 5  # top_k defaults to 5
        assert explanation["value"] == pytest.approx(attribution.value, abs=1e-6)
        for contribution in explanation["contributions"]:
            assert contribution["feature"] in columns
            index = attribution.features.index(contribution["feature"])
            assert contribution["contribution"] == pytest.approx(
                attribution.contributions[index], abs=1e-6
            )
        check_sums(explanation)
    # the same rows as v2 tensors (one input per column), top_k as a parameter
    response = post(
        predictor,
        "/v2/models/penguins/explain",
        {"inputs": v2_columns(rows), "parameters": {"top_k": 2}, "id": "mine"},
    )
    assert response.status_code == 200, response.text
    v2_body = response.json()
    assert v2_body["client_request_id"] == "mine" and v2_body["request_id"] != "mine"
    for v1_explanation, v2_explanation in zip(explanations, v2_body["explanations"], strict=True):
        assert v2_explanation["prediction"]["label"] == v1_explanation["prediction"]["label"]
        assert v2_explanation["contributions"] == v1_explanation["contributions"][:2]
        check_sums(v2_explanation)


def test_sentiment_explain_v1_and_v2(served):
    predictor = served["sentiment"]
    model = train_text_model()  # the registered model, refitted: deterministic
    texts = [POSITIVE[0], NEGATIVE[0]]
    response = post(predictor, V1_TEXT, {"instances": texts, "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "permutation SHAP over words"
    local = get_blueprint("sentiment").explainer(model).explain(texts, ["positive", "negative"])
    for explanation, attribution, text in zip(body["explanations"], local, texts, strict=True):
        label = explanation["prediction"]["label"]
        assert explanation["explained"] == f"probability of {label}"
        assert explanation["value"] == pytest.approx(
            explanation["prediction"]["probabilities"][label], abs=1e-6
        )
        assert len(explanation["contributions"]) == 3
        assert all(c["feature"] in text for c in explanation["contributions"])
        assert explanation["value"] == pytest.approx(attribution.value, abs=1e-9)
        check_sums(explanation)
    assert [e["prediction"]["label"] for e in body["explanations"]] == ["positive", "negative"]
    assert body["explanations"][0]["contributions"][0]["contribution"] > 0

    response = post(predictor, V2_TEXT, {"inputs": text_input(texts)})
    assert response.status_code == 200, response.text
    for v1_explanation, v2_explanation in zip(
        body["explanations"], response.json()["explanations"], strict=True
    ):
        assert v2_explanation["contributions"][:3] == v1_explanation["contributions"]


V1_TEXT = "/v1/models/sentiment:explain"
V2_TEXT = "/v2/models/sentiment/explain"


def text_input(data, datatype="BYTES") -> list[dict]:
    return [{"name": "text", "datatype": datatype, "shape": [len(data)], "data": data}]


@pytest.mark.parametrize(
    ("name", "path", "body", "message"),
    [
        ("sentiment", V1_TEXT, {"instances": [""]}, "instances[0] is an empty text"),
        ("sentiment", V1_TEXT, {"texts": ["a"]}, 'missing "instances"'),
        ("sentiment", V1_TEXT, {"instances": ["good"], "top_k": 0}, "top_k must be an integer"),
        ("sentiment", V1_TEXT, {"instances": ["good"] * 33}, "explain takes at most 32"),
        (
            "sentiment",
            V2_TEXT,
            {"inputs": text_input([1.0], "FP32")},
            'inputs[text].datatype must be "BYTES"',
        ),
        (
            "sentiment",
            V2_TEXT,
            {"inputs": text_input(["good"]), "parameters": {"top_k": "all"}},
            "parameters.top_k must be an integer",
        ),
        (
            "penguins",
            "/v1/models/penguins:explain",
            {"instances": [{"island": "Biscoe"}]},
            "missing column(s)",
        ),
    ],
)
def test_bad_input_answers_400_naming_the_field(served, name, path, body, message):
    response = post(served[name], path, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_unknown_model_answers_404(served):
    response = post(served["sentiment"], "/v2/models/nope/explain", {"inputs": []})
    assert response.status_code == 404, response.text


@pytest.mark.parametrize("path", ["/v1/models/sentiment:explain", "/v2/models/sentiment/explain"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "x"}])
def test_explain_needs_the_token_like_predict(served, path, headers):
    body = {"instances": ["good"]} if path.startswith("/v1") else {"inputs": text_input(["good"])}
    response = post(served["sentiment"], path, body, headers=headers)
    assert response.status_code == 401, response.text


def test_explanations_are_not_stored_as_predictions(served):
    predictor = served["sentiment"]
    store = PredictionStore(predictor.store_url)
    before = store.count_predictions("sentiment")
    for _ in range(3):
        response = post(predictor, "/v1/models/sentiment:explain", {"instances": ["good", "bad"]})
        assert response.status_code == 200, response.text
    predicted = post(predictor, "/v1/models/sentiment:predict", {"instances": ["good"]})
    assert predicted.status_code == 200, predicted.text
    request_id = predicted.json()["request_id"]
    deadline = time.monotonic() + 20
    while store.get_prediction(request_id) is None:  # the writer is FIFO: earlier rows first
        assert time.monotonic() < deadline, "the prediction was never stored"
        time.sleep(0.2)
    assert store.count_predictions("sentiment") == before + 1
