"""``driftloop serve NAME --docs``: the real predictor serves Swagger UI on /docs and a typed
OpenAPI document with examples; without ``--docs`` there is no /docs."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest_serving import register_text_model, running_predictor, v2_body

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "d0cs-t0ken"
INFER = "/v2/models/{model_name}/infer"


def tag_as_sentiment(tracking_uri: str, name: str, version: str) -> None:
    """The blueprint tags a pipeline writes, so the predictor knows how to serve the version."""
    from mlflow import MlflowClient

    from driftloop.blueprints.sentiment import SentimentBlueprint
    from driftloop.lineage import blueprint_tags

    blueprint = SentimentBlueprint()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for key, value in blueprint_tags(blueprint.spec, blueprint.flavour).items():
        client.set_model_version_tag(name, version, key, value)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    home = tmp_path_factory.mktemp("docs-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, "sentiment")
    tag_as_sentiment(tracking, "sentiment", version)
    env = {
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_API_TOKEN": TOKEN,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    return home, env


# first: it runs before the documented predictor starts, so one predictor runs at a time
def test_without_docs_there_is_no_swagger_ui(registry):
    home, env = registry
    with running_predictor("sentiment", home, env=env, extra_args=("--no-grpc",)) as predictor:
        assert httpx.get(f"{predictor.url}/docs", timeout=10).status_code == 404
        # KServe's app still serves its own (untyped) /openapi.json, as before
        document = httpx.get(f"{predictor.url}/openapi.json", timeout=10).json()
        assert document["info"]["title"] != "driftloop predictor"


@pytest.fixture(scope="module")
def documented(registry):
    home, env = registry
    with running_predictor("sentiment", home, env=env, extra_args=("--docs", "--no-grpc")) as p:
        with httpx.Client(base_url=p.url, timeout=10) as http:
            yield http


def examples(content: dict) -> dict:
    return content.get("examples") or {}


def test_docs_answers_swagger_ui(documented):
    page = documented.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.text and "/openapi.json" in page.text


def test_openapi_types_infer_and_feedback_with_examples(documented):
    response = documented.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    try:
        from openapi_spec_validator import validate
    except ImportError:  # the dev extra is not installed
        pass
    else:
        validate(document)

    infer = document["paths"][INFER]["post"]
    body = infer["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/InferenceRequest")
    assert {"text", "table"} <= set(examples(body))
    ok = infer["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("InferenceResponse") and examples(ok)
    for status in ("400", "404", "503"):
        error = infer["responses"][status]["content"]["application/json"]
        assert error["schema"]["$ref"].endswith("/ErrorBody") and examples(error)

    for path in ("/v1/feedback/{request_id}", "/v1/feedback"):
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"].startswith("#/components/schemas/Feedback")
        assert examples(body)
        ok = operation["responses"]["200"]["content"]["application/json"]
        assert {"classifier", "regressor"} <= set(examples(ok))
        for status in ("404", "422", "503"):
            assert examples(operation["responses"][status]["content"]["application/json"])
    feedback_fields = document["components"]["schemas"]["FeedbackBody"]["properties"]
    assert {"value", "label", "correct", "source"} <= set(feedback_fields)

    predict = document["paths"]["/v1/models/{model_name}:predict"]["post"]
    assert {"text", "table"} <= set(examples(predict["requestBody"]["content"]["application/json"]))

    # a token is configured: the protected routes say so, the probes stay open
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in infer["security"]
    assert "security" not in document["paths"]["/v2/health/ready"]["get"]


def test_docs_change_nothing_in_how_requests_are_parsed(documented):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert documented.post("/v2/models/sentiment/infer", json=v2_body(["nice"])).status_code == 401
    bad = documented.post("/v2/models/sentiment/infer", content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "error" in bad.json()
    good = documented.post("/v2/models/sentiment/infer", json=v2_body(["great"]), headers=auth)
    assert good.status_code == 200, good.text
    assert good.json()["parameters"]["labels"] == ["negative", "positive"]
