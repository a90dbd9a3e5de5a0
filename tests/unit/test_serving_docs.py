"""``driftloop serve --docs``: the OpenAPI document the predictor's app generates, in process
(KServe's REST server registering into a fresh FastAPI app, no model loaded)."""

from __future__ import annotations

import jsonschema
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from fastapi.testclient import TestClient
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from driftloop.serving.server import DriftloopRESTServer
from driftloop.settings import Settings

INFER = "/v2/models/{model_name}/infer"
FEEDBACK = "/v1/feedback/{request_id}"
BATCH = "/v1/feedback"
PREDICT = "/v1/models/{model_name}:predict"


def app_for(*, docs: bool, token: str | None = None) -> FastAPI:
    """What ``RESTServer.create_application`` builds, on a fresh app like KServe's."""
    app = FastAPI(docs_url=None, redoc_url=None, default_response_class=ORJSONResponse)
    repository = ModelRepository()
    server = DriftloopRESTServer(
        "unused:app",
        DataPlane(model_registry=repository),
        ModelRepositoryExtension(model_registry=repository),
        8080,
        settings=Settings(api_token=token),
        docs=docs,
    )
    server._add_middlewares(app)  # the order create_application uses
    server._register_endpoints(app)
    server._add_exception_handlers(app)
    return app


@pytest.fixture(scope="module")
def document() -> dict:
    return app_for(docs=True, token="s3cret").openapi()


def schema_validator(document: dict, schema: dict) -> jsonschema.Draft202012Validator:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; refs point into the document
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def check_examples(document: dict, content: dict) -> int:
    """Every named example of a media type fits its schema; returns how many there are."""
    examples = content.get("examples", {})
    validator = schema_validator(document, content["schema"])
    for name, example in examples.items():
        errors = list(validator.iter_errors(example["value"]))
        assert not errors, f"example {name}: {errors[0].message}"
    return len(examples)


def test_the_document_is_valid_openapi(document):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
    assert document["info"]["title"] == "driftloop predictor"


def test_infer_is_documented_from_the_route_that_answers(document):
    operation = document["paths"][INFER]["post"]
    body = operation["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/InferenceRequest"}
    assert set(body["application/json"]["examples"]) == {"text", "table"}
    assert check_examples(document, body["application/json"]) == 2
    assert "application/octet-stream" in body  # the OIP binary tensor extension
    answers = operation["responses"]
    assert check_examples(document, answers["200"]["content"]["application/json"]) == 2
    for status in ("400", "404", "503"):
        error = answers[status]["content"]["application/json"]
        assert error["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert check_examples(document, error) >= 1
    assert "422" not in answers  # the handler reads the raw body
    # KServe's shadowed handler on the same route is not what the document shows
    assert "InferenceRequest" in document["components"]["schemas"]
    assert "model_version" not in {p["name"] for p in operation["parameters"]}


def test_feedback_routes_show_their_bodies_with_examples(document):
    for path, examples in ((FEEDBACK, 4), (BATCH, 2)):
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]
        assert check_examples(document, body) == examples
        answers = operation["responses"]
        ok = answers["200"]["content"]["application/json"]
        assert set(ok["examples"]) == {"classifier", "regressor"}
        check_examples(document, ok)
        for status in ("404", "422", "503"):
            assert check_examples(document, answers[status]["content"]["application/json"]) >= 1
    fields = document["components"]["schemas"]["FeedbackBody"]["properties"]
    assert {"value", "label", "correct", "source"} <= set(fields)
    assert "type" not in fields["value"]  # any JSON


def test_v1_predict_gets_a_body_with_text_and_table_examples(document):
    operation = document["paths"][PREDICT]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"text", "table"}
    check_examples(document, body)
    check_examples(document, operation["responses"]["200"]["content"]["application/json"])


def test_a_token_marks_the_protected_routes_only(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    for path in (INFER, FEEDBACK, BATCH, PREDICT):
        operation = document["paths"][path]["post"]
        assert {"bearerAuth": []} in operation["security"]
        assert "401" in operation["responses"]
    assert "security" not in document["paths"]["/v2/health/ready"]["get"]
    open_document = app_for(docs=True).openapi()
    assert "securitySchemes" not in open_document.get("components", {})
    assert "security" not in open_document["paths"][INFER]["post"]


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID")  # KServe's own, docs off
def test_docs_serves_swagger_ui_and_without_docs_there_is_none():
    with TestClient(app_for(docs=True, token="s3cret")) as client:
        page = client.get("/docs")  # open even with a token, like /openapi.json
        assert page.status_code == 200 and "swagger-ui" in page.text
        assert client.get("/openapi.json").json()["info"]["title"] == "driftloop predictor"
    app = app_for(docs=False)
    assert "/docs" not in {getattr(route, "path", None) for route in app.routes}
    assert app.openapi()["info"]["title"] != "driftloop predictor"


def test_infer_still_parses_the_raw_body_with_docs_on():
    with TestClient(app_for(docs=True)) as client:
        answer = client.post("/v2/models/nosuch/infer", content=b"not json")
    assert answer.status_code == 404  # unknown model: checked before the body, as before
    assert "error" in answer.json()


def test_cli_help_says_docs_are_off_by_default():
    from driftloop.cli.serve import serve

    help_text = " ".join(CliRunner().invoke(serve, ["--help"]).output.split())
    assert "--docs" in help_text and "Off by default" in help_text
