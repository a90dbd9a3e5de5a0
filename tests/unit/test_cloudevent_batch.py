"""CloudEvents JSON batches: framed by the payload logger, parsed by the monitor."""

from __future__ import annotations

import base64
import json

import pytest

from driftloop.monitor.events import (
    BATCH_CONTENT_TYPE,
    InvalidBatch,
    InvalidEvent,
    is_batch,
    parse_batch,
    parse_event,
    parse_structured,
)
from driftloop.serving.cloudevent_framing import (
    BATCH_HEADERS,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    LoggedEvent,
    batch_body,
    cloudevent,
    structured,
)
from tests.unit.conftest_monitor import ce_headers, v2_request


def event(event_type: str, request_id: str, body) -> LoggedEvent:  # noqa: ANN001
    return cloudevent(
        event_type=event_type,
        request_id=request_id,
        body=body,
        model_name="sentiment",
        namespace="ns",
        source="http://p",
    )


def test_batch_is_a_json_array_of_structured_events_with_kserve_extensions():
    request = event(REQUEST_TYPE, "r1", {"instances": ["good"]})
    response = event(RESPONSE_TYPE, "r1", {"predictions": [{"label": "positive"}]})
    assert BATCH_HEADERS == {"content-type": "application/cloudevents-batch+json"}
    decoded = json.loads(batch_body([request, response]))
    common = {
        "specversion": "1.0",
        "id": "r1",
        "source": "http://p",
        "inferenceservicename": "sentiment",
        "namespace": "ns",
        "component": "predictor",
        "endpoint": "default",
        "datacontenttype": "application/json",
    }
    assert decoded == [
        {**common, "type": REQUEST_TYPE, "data": {"instances": ["good"]}},
        {**common, "type": RESPONSE_TYPE, "data": {"predictions": [{"label": "positive"}]}},
    ]


def test_bytes_the_logger_did_not_serialise_travel_as_data_base64():
    raw = b'{"instances": ["caf\xc3\xa9"]}'
    element = json.loads(structured(event(REQUEST_TYPE, "r2", raw)))
    assert "data" not in element
    assert base64.b64decode(element["data_base64"]) == raw


def test_every_framed_event_parses_back_as_if_it_had_come_alone():
    events = [
        event(
            REQUEST_TYPE, "a", {"inputs": [{"name": "text", "datatype": "BYTES", "data": ["x"]}]}
        ),
        event(
            RESPONSE_TYPE, "a", {"outputs": [{"name": "label", "datatype": "BYTES", "data": ["p"]}]}
        ),
        event(REQUEST_TYPE, "b", b'{"instances": ["y"]}'),
    ]
    batched = parse_batch(batch_body(events))
    alone = [parse_event(e.headers, e.body) for e in events]
    assert batched == alone
    assert [e.kind for e in batched] == ["request", "response", "request"]


def test_batch_content_type_is_recognised_with_parameters():
    assert is_batch(f"{BATCH_CONTENT_TYPE}; charset=utf-8")
    assert not is_batch("application/json") and not is_batch(None)


def test_a_bad_event_names_its_index_and_attribute_and_every_bad_one_is_listed():
    good = json.loads(structured(event(REQUEST_TYPE, "ok", {"instances": ["x"]})))
    no_id = {**good, "id": ""}
    bad_type = {**good, "type": "com.example.other"}
    body = json.dumps([good, no_id, good, bad_type]).encode()
    with pytest.raises(InvalidBatch) as caught:
        parse_batch(body)
    assert [p.index for p in caught.value.problems] == [1, 3]
    assert "events[1]: attribute id is missing" in str(caught.value)
    assert "events[3]: attribute type must be" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "not valid JSON"),
        (b'{"specversion": "1.0"}', "JSON array"),
        (b"[1]", "events[0]: a structured CloudEvent must be a JSON object"),
    ],
)
def test_a_batch_that_is_not_an_array_of_objects_is_refused(body, message):
    with pytest.raises(InvalidEvent, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_batch(body)


def test_structured_data_problems_name_the_attribute():
    base = json.loads(structured(event(REQUEST_TYPE, "s", {"instances": ["x"]})))
    del base["data"]
    with pytest.raises(InvalidEvent, match="data and data_base64 are both missing"):
        parse_structured(base)
    with pytest.raises(InvalidEvent, match="data_base64 is not valid base64"):
        parse_structured({**base, "data_base64": "***"})
    with pytest.raises(InvalidEvent, match="attribute data must be a JSON object"):
        parse_structured({**base, "data": [1, 2]})
    with pytest.raises(InvalidEvent, match="attribute datacontenttype"):
        parse_structured({**base, "datacontenttype": "text/plain", "data": {}})


def test_a_batch_sent_where_one_event_is_expected_is_refused_by_name():
    with pytest.raises(InvalidEvent, match="holds several events"):
        parse_event({"content-type": BATCH_CONTENT_TYPE}, b"[]")


def test_single_binary_events_still_parse_as_before():
    parsed = parse_event(ce_headers("request", "abc"), v2_request(["good film"]))
    assert parsed.event_id == "abc" and parsed.body["inputs"][0]["data"] == ["good film"]
