"""BlueprintModel and its pure helpers: decoding, v1/v2 answers, auth, feedback rules."""

from __future__ import annotations

import asyncio
import json
import pickle

import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest

from driftloop.blueprints.codec import Limits
from driftloop.blueprints.feedback import LabelFeedback, NumberFeedback
from driftloop.blueprints.sentiment import SentimentBlueprint
from driftloop.serving import auth, metrics
from driftloop.serving.feedback import FeedbackBody, FeedbackError, resolve_feedback
from driftloop.serving.loader import LoadedModel, is_alias_uri, model_uri_for, resolve
from driftloop.serving.middleware import classify_path
from driftloop.serving.model import BlueprintModel, decode
from driftloop.settings import Settings
from driftloop.store import PredictionRecord

LIMITS = Limits(max_instances=3, max_chars=20)


def pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts = ["good great fine", "love it good", "bad awful", "hate it bad", "meh ok so so"]
    labels = ["positive", "positive", "negative", "negative", "neutral"]
    return Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(C=20))]).fit(
        texts, labels
    )


def loaded_version(model, version="7", limits=LIMITS):
    blueprint = SentimentBlueprint()
    codec = blueprint.codec(model, limits)
    return LoadedModel(model, blueprint, codec, version, f"models:/m/{version}")


@pytest.fixture(scope="module")
def loaded():
    return loaded_version(pipeline())


def served_with(settings, loaded_model):
    model = BlueprintModel("m", "models:/m@champion", settings)
    model.swap(loaded_model)
    return model


@pytest.fixture
def served(tmp_path, loaded):
    settings = Settings(home=tmp_path, low_confidence_threshold=0.9, max_instances=4)
    limits = Limits(max_instances=4, low_confidence=0.9)
    return served_with(settings, loaded_version(loaded.model, limits=limits))


def infer(model, payload, headers=None, response_headers=None):
    """KServe's template, as ``Model.__call__`` runs it."""
    headers = headers or {}
    call = model.preprocess(payload, headers)
    predicted = asyncio.run(model.predict(call, headers, response_headers))
    return model.postprocess(predicted, headers, response_headers)


def texts_from_v1(body, limits=LIMITS):
    return decode(loaded_version(None, limits=limits), body).model_input


def texts_from_v2(request, limits=LIMITS):
    return decode(loaded_version(None, limits=limits), request).model_input


def v2_request(texts, shape=None, datatype="BYTES", request_id=None, name="text"):
    infer_input = InferInput(name, shape or [len(texts)], datatype, data=texts)
    return InferRequest("m", [infer_input], request_id=request_id)


# --- validation ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'must be a JSON object with "instances"'),
        ({}, 'missing "instances"'),
        ({"instances": "x"}, "must be a list"),
        ({"instances": []}, "instances is empty: send at least one text"),
        ({"instances": ["a"] * 4}, "4 items; at most 3"),
        ({"instances": [3]}, "instances[0] must be a string"),
        ({"instances": ["  "]}, "instances[0] is an empty text"),
        ({"instances": ["x" * 21]}, "21 characters; at most 20"),
    ],
)
def test_v1_validation_names_the_problem(body, message):
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        texts_from_v1(body)


def test_v1_accepts_strings_and_text_objects():
    assert texts_from_v1({"instances": ["a", {"text": "b"}]}) == ["a", "b"]


def test_v2_validation():
    assert texts_from_v2(v2_request(["a", "b"])) == ["a", "b"]
    assert texts_from_v2(v2_request([b"caf\xc3\xa9"])) == ["café"]
    assert texts_from_v2(v2_request(["a", "b"], shape=[2, 1])) == ["a", "b"]
    with pytest.raises(InvalidInput, match='datatype must be "BYTES", got "FP32"'):
        texts_from_v2(v2_request([1.0], datatype="FP32"))
    with pytest.raises(InvalidInput, match=r"shape \[3\] does not match its 2 data items"):
        texts_from_v2(v2_request(["a", "b"], shape=[3]))
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        texts_from_v2(v2_request([b"\xff\xfe"]))
    with pytest.raises(InvalidInput, match='missing "inputs"'):
        texts_from_v2(InferRequest("m", []))
    two = InferRequest(
        "m", [InferInput("a", [1], "BYTES", ["x"]), InferInput("b", [1], "BYTES", ["y"])]
    )
    with pytest.raises(InvalidInput, match='no input named "text"'):
        texts_from_v2(two)


def test_v1_text_objects_decode_bytes():
    assert texts_from_v1({"instances": [{"text": b"ok"}]}) == ["ok"]


# --- the model ------------------------------------------------------------------------
def test_v1_answer_contract(served):
    headers: dict[str, str] = {}
    answer = infer(served, {"instances": ["good great", "bad awful"]}, {}, headers)
    assert answer["model_version"] == "7"
    assert headers["x-request-id"] == answer["request_id"] and len(answer["request_id"]) == 32
    first, second = answer["predictions"]
    assert first["label"] == "positive" and second["label"] == "negative"
    assert set(first["probabilities"]) == {"negative", "neutral", "positive"}
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-5
    top = max(first["probabilities"].values())
    assert first["low_confidence"] == (top < 0.9)


def test_v1_incoming_request_id_header_is_only_a_correlation_value(served):
    headers: dict[str, str] = {}
    answer = infer(served, {"instances": ["good"]}, {"x-request-id": "abc"}, headers)
    assert answer["client_request_id"] == "abc"
    assert answer["request_id"] != "abc" and len(answer["request_id"]) == 32
    assert headers["x-request-id"] == answer["request_id"]
    again = infer(served, {"instances": ["bad"]}, {"x-request-id": "abc"}, {})
    assert again["request_id"] != answer["request_id"]
    with pytest.raises(InvalidInput, match="at most 128"):
        infer(served, {"instances": ["good"]}, {"x-request-id": "x" * 129}, {})


def test_v2_answer_contract(served, loaded):
    headers: dict[str, str] = {}
    response = infer(served, v2_request(["good great", "hate it"], request_id="r-1"), {}, headers)
    body, _ = response.to_rest()
    assert body["id"] == headers["x-request-id"] != "r-1" and len(body["id"]) == 32
    assert body["parameters"]["client_request_id"] == "r-1"
    assert body["model_name"] == "m" and body["model_version"] == "7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"]["data"] == ["positive", "negative"]
    assert (
        outputs["probabilities"]["shape"] == [2, 3]
        and outputs["probabilities"]["datatype"] == "FP32"
    )
    expected = loaded.model.predict_proba(["good great", "hate it"]).reshape(-1)
    np.testing.assert_allclose(outputs["probabilities"]["data"], expected, rtol=1e-5)
    assert outputs["low_confidence"]["datatype"] == "BOOL"
    assert body["parameters"]["labels"] == ["negative", "neutral", "positive"]


def test_v2_without_id_gets_a_generated_string_id(served):
    response = infer(served, v2_request(["good"]), {}, {})
    assert isinstance(response.id, str) and len(response.id) == 32


def test_grpc_answer_carries_labels_as_json(served):
    request = v2_request(["good"])
    request.from_grpc = True
    grpc_response = infer(served, request, {}, {}).to_grpc()
    assert json.loads(grpc_response.parameters["labels"].string_param) == [
        "negative",
        "neutral",
        "positive",
    ]


def test_low_confidence_threshold(tmp_path, loaded):
    for threshold, flagged in ((0.0, False), (1.0, True)):
        settings = Settings(home=tmp_path, low_confidence_threshold=threshold)
        model = BlueprintModel("m", "models:/m/7", settings)
        model.swap(loaded_version(loaded.model, limits=model.limits))
        answer = infer(model, {"instances": ["meh"]}, {}, {})
        assert answer["predictions"][0]["low_confidence"] is flagged


def test_swap_updates_version_gauge_and_survives_pickling(served, loaded):
    served.swap(loaded_version(loaded.model, "8"))
    assert metrics.MODEL_VERSION_INFO.labels(model="m", version="8")._value.get() == 1
    samples = {
        s.labels["version"]
        for s in metrics.MODEL_VERSION_INFO.collect()[0].samples
        if s.labels["model"] == "m"
    }
    assert samples == {"8"}
    clone = pickle.loads(pickle.dumps(served))
    assert clone.served_version == "8"
    assert infer(clone, {"instances": ["good"]}, {}, {})["model_version"] == "8"


def test_metadata_types(served):
    assert served.get_input_types() == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in served.get_output_types()] == [
        "label",
        "probabilities",
        "low_confidence",
    ]


# --- loader URIs ------------------------------------------------------------------------
def test_model_uri_helpers():
    assert model_uri_for("s") == "models:/s@champion"
    assert model_uri_for("s", model_uri="models:/s/3") == "models:/s/3"
    assert is_alias_uri("models:/s@challenger") and not is_alias_uri("models:/s/3")
    assert resolve("models:/s/3") == ("models:/s/3", "3")
    assert resolve("runs:/0123456789abcdef/model")[1] == "0123456789ab"


# --- auth ---------------------------------------------------------------------------------
def test_token_matching():
    assert auth.token_matches(None, {})
    assert auth.token_matches("s3cret", {"authorization": "Bearer s3cret"})
    assert auth.token_matches("s3cret", {"x-api-key": "s3cret"})
    assert not auth.token_matches("s3cret", {"authorization": "Bearer nope"})
    assert not auth.token_matches("s3cret", {"authorization": "Basic s3cret"})
    assert not auth.token_matches("s3cret", {})


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/v1/models/m:predict", True),
        ("/v2/models/m/infer", True),
        ("/v1/feedback/abc", True),
        ("/v1/feedback", True),
        ("/v2/repository/models/m/load", True),
        ("/v2/health/ready", False),
        ("/metrics", False),
        ("/v2/models/m", False),
        ("/v1/models/m", False),
        ("/", False),
    ],
)
def test_protected_paths(path, protected):
    assert auth.is_protected_path(path) is protected


def test_request_metric_labels():
    assert classify_path("/v2/models/m/infer") == ("m", "v2_infer")
    assert classify_path("/v1/models/m:predict") == ("m", "v1_predict")
    assert classify_path("/v1/feedback/x") == ("", "feedback")


# --- feedback rules -------------------------------------------------------------------------
def prediction(labels=("positive",), classes=("negative", "positive")):
    outputs = [
        {"label": label, "probabilities": dict.fromkeys(classes, 0.5), "low_confidence": True}
        for label in labels
    ]
    return PredictionRecord("r", "m", "1", ["t"] * len(labels), outputs, labels[0], 0.5)


def feedback(**body):
    return FeedbackBody(**body)


def test_feedback_rules():
    labels = LabelFeedback()
    assert resolve_feedback(prediction(), labels, feedback(label="negative")) == ("negative", False)
    assert resolve_feedback(prediction(), labels, feedback(value="positive")) == ("positive", True)
    assert resolve_feedback(prediction(), labels, feedback(correct=True)) == ("positive", True)
    assert resolve_feedback(prediction(), labels, feedback(correct=False)) == ("negative", False)
    three = prediction(classes=("negative", "neutral", "positive"))
    assert resolve_feedback(three, labels, feedback(correct=False)) == (None, False)
    with pytest.raises(
        FeedbackError, match=r"not one of the model's labels \['negative', 'positive'\]"
    ):
        resolve_feedback(prediction(), labels, feedback(label="neutral"))
    with pytest.raises(FeedbackError) as missing:
        resolve_feedback(prediction(), labels, feedback())
    assert missing.value.status == 422


def test_numeric_feedback_rules():
    numbers = NumberFeedback()
    regression = PredictionRecord("r", "m", "1", [{"x": 1.0}], [{"prediction": 2.5}], None, None)
    assert resolve_feedback(regression, numbers, feedback(value=3)) == (3.0, None)
    assert resolve_feedback(regression, numbers, feedback(correct=False)) == (None, False)
    with pytest.raises(FeedbackError, match="value: value must be a number, got str") as bad:
        resolve_feedback(regression, numbers, feedback(value="3"))
    assert bad.value.status == 422
