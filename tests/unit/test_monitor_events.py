import json

import pytest

from driftloop.blueprints.codec import Limits
from driftloop.blueprints.text_codec import TextCodec
from driftloop.monitor.events import (
    InvalidEvent,
    pair_samples,
    parse_event,
    request_batch,
    response_outputs,
)
from tests.unit.conftest_monitor import (
    ce_headers,
    v1_request,
    v1_response,
    v2_request,
    v2_response,
)

CODEC = TextCodec(None, Limits())  # decoding needs no model


def request_texts(body):
    return request_batch(body, CODEC).model_input


def response_labels(body):
    return [output["label"] for output in response_outputs(body)]


def test_binary_mode_request_event_is_parsed():
    event = parse_event(ce_headers("request", "abc"), v2_request(["good film"]))
    assert (event.event_id, event.kind, event.model) == ("abc", "request", "sentiment")
    assert request_texts(event.body) == ["good film"]


def test_header_names_are_case_insensitive():
    headers = {k.upper(): v for k, v in ce_headers("response", "x1").items()}
    assert parse_event(headers, v2_response(["positive"])).kind == "response"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ce-specversion": "0.3"}, "ce-specversion"),
        ({"ce-id": ""}, "ce-id"),
        ({"ce-type": "com.example.other"}, "ce-type"),
        ({"content-type": "text/plain"}, "content-type"),
    ],
)
def test_bad_headers_name_the_header(change, field):
    headers = ce_headers("request", "abc") | change
    with pytest.raises(InvalidEvent, match=field):
        parse_event(headers, v2_request(["x"]))


def test_non_json_body_is_rejected():
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        parse_event(ce_headers("request", "abc"), b"{nope")
    with pytest.raises(InvalidEvent, match="JSON object"):
        parse_event(ce_headers("request", "abc"), b"[1, 2]")


def test_structured_mode_is_mapped_onto_binary():
    envelope = {
        "specversion": "1.0",
        "id": "s-1",
        "type": "org.kubeflow.serving.inference.request",
        "source": "test",
        "inferenceservicename": "sentiment",
        "datacontenttype": "application/json",
        "data": {"instances": ["hello"]},
    }
    event = parse_event(
        {"content-type": "application/cloudevents+json"}, json.dumps(envelope).encode()
    )
    assert (event.event_id, event.kind, event.model) == ("s-1", "request", "sentiment")
    assert request_texts(event.body) == ["hello"]


def test_v1_and_v2_payloads_give_the_same_samples():
    texts, labels = ["a great film", "dull"], ["positive", "negative"]
    v1 = pair_samples(json.loads(v1_request(texts)), json.loads(v1_response(labels)), CODEC)
    v2 = pair_samples(json.loads(v2_request(texts)), json.loads(v2_response(labels)), CODEC)
    for a, b in zip(v1, v2, strict=True):  # FP32 probabilities: equal up to float32
        assert a.model_input == b.model_input and a.output["label"] == b.output["label"]
        assert a.output["probabilities"] == pytest.approx(b.output["probabilities"])
    assert [(s.model_input, s.output["label"]) for s in v1] == [
        ([text], label) for text, label in zip(texts, labels, strict=True)
    ]
    assert v2[0].output["probabilities"] == pytest.approx({"negative": 0.1, "positive": 0.9})
    assert v2[0].output["low_confidence"] is False


def test_v1_instances_may_be_objects_with_text():
    assert request_texts({"instances": [{"text": "hi"}, "there"]}) == ["hi", "there"]


def test_v2_nested_data_is_flattened_and_label_tensor_found_by_name():
    body = {
        "outputs": [
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [2, 2],
                "data": [[0.1, 0.9], [0.8, 0.2]],
            },
            {
                "name": "label",
                "datatype": "BYTES",
                "shape": [2, 1],
                "data": [["positive"], ["negative"]],
            },
        ]
    }
    assert response_labels(body) == ["positive", "negative"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": "text"}, "instances must be a list"),
        ({"instances": [1]}, r"instances\[0\] must be a string"),
        ({"inputs": []}, "non-empty list"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "data": [1.0]}]}, 'must be "BYTES"'),
        ({"something": 1}, "neither instances"),
    ],
)
def test_bad_request_payloads_name_the_field(body, message):
    with pytest.raises(InvalidEvent, match=message):
        request_texts(body)


def test_count_mismatch_between_request_and_response_is_invalid():
    for codec in (CODEC, None):  # without a reference the counts are still checked
        with pytest.raises(InvalidEvent, match="2 instances but response has 1"):
            pair_samples({"instances": ["a", "b"]}, {"predictions": [{"label": "positive"}]}, codec)
