"""Payload-logger CloudEvents: headers in, texts/labels out.

The predictor's logger (ours locally, KServe's agent in a cluster) POSTs each
request and each response as a CloudEvents 1.0 *binary-mode* HTTP message: the
attributes are ``ce-*`` headers and the body is the raw inference JSON.
Structured mode (``application/cloudevents+json``: one JSON envelope) and
batches (``application/cloudevents-batch+json``: a JSON array of structured
events, which driftloop's logger sends when several events are queued) are
understood too. Both the v1 (``instances``/``predictions``) and the v2 Open
Inference Protocol (``inputs``/``outputs``) shapes are understood here so the
rest of the monitor only sees lists of texts and lists of labels.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from kserve.errors import InvalidInput

from driftloop.serving import wire
from driftloop.serving.cloudevent_framing import BATCH_CONTENT_TYPE, REQUEST_TYPE, RESPONSE_TYPE

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

EventKind = Literal["request", "response"]


class InvalidEvent(ValueError):
    """An event the monitor cannot use; the message names the header or field."""


@dataclass(frozen=True)
class BatchProblem:
    index: int
    detail: str


class InvalidBatch(InvalidEvent):
    """Events of a batch that cannot be used, each with its position in the array."""

    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"events[{p.index}]: {p.detail}" for p in problems))


@dataclass(frozen=True)
class InferenceEvent:
    event_id: str
    kind: EventKind
    model: str | None
    body: dict


@dataclass(frozen=True)
class Sample:
    """One paired prediction: the text that went in and the label that came out."""

    text: str
    label: str


def is_batch(content_type: str | None) -> bool:
    return (content_type or "").lower().startswith(BATCH_CONTENT_TYPE)


def parse_event(headers: Mapping[str, str], body: bytes) -> InferenceEvent:
    """Validate one binary-mode (or structured-mode) CloudEvent and decode its JSON data."""
    lowered = {key.lower(): value for key, value in headers.items()}
    content_type = lowered.get("content-type", "application/json")
    if content_type.lower().startswith(STRUCTURED_CONTENT_TYPE):
        return parse_structured(_decode_json(body, "structured CloudEvent body"))
    if is_batch(content_type):
        raise InvalidEvent(f"header content-type {BATCH_CONTENT_TYPE} holds several events")
    attributes = {key[3:]: value for key, value in lowered.items() if key.startswith("ce-")}
    return _event(
        attributes,
        describe=lambda name: f"header ce-{name}",
        content_type=content_type,
        content_field="header content-type",
        data=lambda: _decode_json(body, "body"),
        data_field="body",
    )


def parse_structured(envelope: object) -> InferenceEvent:
    """One structured-mode CloudEvent (a decoded JSON object), as in a batch."""
    if not isinstance(envelope, dict):
        raise InvalidEvent("a structured CloudEvent must be a JSON object")
    return _event(
        envelope,
        describe=lambda name: f"attribute {name}",
        content_type=str(envelope.get("datacontenttype", "application/json")),
        content_field="attribute datacontenttype",
        data=lambda: _structured_data(envelope),
        data_field="attribute data",
    )


def parse_batch(body: bytes) -> list[InferenceEvent]:
    """Every event of a CloudEvents JSON batch, or :class:`InvalidBatch` naming each bad one.

    All or nothing: the caller applies none of the events unless all of them parse.
    """
    items = _decode_json(body, "CloudEvents batch body")
    if not isinstance(items, list):
        raise InvalidEvent("a CloudEvents batch must be a JSON array of structured events")
    events: list[InferenceEvent] = []
    problems: list[BatchProblem] = []
    for index, item in enumerate(items):
        try:
            events.append(parse_structured(item))
        except InvalidEvent as exc:
            problems.append(BatchProblem(index, str(exc)))
    if problems:
        raise InvalidBatch(problems)
    return events


def _event(
    attributes: Mapping[str, object],
    *,
    describe: Callable[[str], str],
    content_type: str,
    content_field: str,
    data: Callable[[], object],
    data_field: str,
) -> InferenceEvent:
    spec = attributes.get("specversion")
    if spec != "1.0":
        raise InvalidEvent(f"{describe('specversion')} must be 1.0, got {spec!r}")
    event_id = attributes.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise InvalidEvent(f"{describe('id')} is missing")
    event_type = attributes.get("type")
    if event_type == REQUEST_TYPE:
        kind: EventKind = "request"
    elif event_type == RESPONSE_TYPE:
        kind = "response"
    else:
        raise InvalidEvent(
            f"{describe('type')} must be {REQUEST_TYPE} or {RESPONSE_TYPE}, got {event_type!r}"
        )
    if "json" not in content_type:
        raise InvalidEvent(f"{content_field} must be application/json, got {content_type!r}")
    decoded = data()
    if not isinstance(decoded, dict):
        raise InvalidEvent(f"{data_field} must be a JSON object")
    model = attributes.get("inferenceservicename")
    return InferenceEvent(
        event_id=event_id.strip(),
        kind=kind,
        model=str(model) if model else None,
        body=decoded,
    )


def _decode_json(raw: bytes | str, what: str) -> object:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"{what} is not valid JSON: {exc}") from None


def _structured_data(envelope: dict) -> object:
    if "data" in envelope:
        return envelope["data"]
    encoded = envelope.get("data_base64")
    if encoded is None:
        raise InvalidEvent("attributes data and data_base64 are both missing")
    try:
        raw = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidEvent(f"attribute data_base64 is not valid base64: {exc}") from None
    return _decode_json(raw, "attribute data_base64")


def request_texts(body: dict) -> list[str]:
    """Texts of a v1 ``instances`` or v2 ``inputs`` request."""
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise InvalidEvent("request field instances must be a list")
        return [_instance_text(item, index) for index, item in enumerate(instances)]
    if "inputs" in body:
        tensor = _pick_tensor(body["inputs"], "inputs", preferred="text", datatype="BYTES")
        return [
            _as_text(item, f"inputs[{tensor['name']}].data")
            for item in _flat_data(tensor, "inputs")
        ]
    raise InvalidEvent("request has neither instances (v1) nor inputs (v2)")


def response_labels(body: dict) -> list[str]:
    """Predicted labels of a v1 ``predictions`` or v2 ``outputs`` response."""
    if "predictions" in body:
        predictions = body["predictions"]
        if not isinstance(predictions, list):
            raise InvalidEvent("response field predictions must be a list")
        labels = []
        for index, item in enumerate(predictions):
            label = item.get("label") if isinstance(item, dict) else item
            labels.append(_as_text(label, f"predictions[{index}].label"))
        return labels
    if "outputs" in body:
        tensor = _pick_tensor(body["outputs"], "outputs", preferred="label", datatype="BYTES")
        return [
            _as_text(item, f"outputs[{tensor['name']}].data")
            for item in _flat_data(tensor, "outputs")
        ]
    raise InvalidEvent("response has neither predictions (v1) nor outputs (v2)")


def pair_samples(request: dict, response: dict) -> list[Sample]:
    texts = request_texts(request)
    labels = response_labels(response)
    if len(texts) != len(labels):
        raise InvalidEvent(f"request has {len(texts)} texts but response has {len(labels)} labels")
    return [Sample(text=text, label=label) for text, label in zip(texts, labels, strict=True)]


def _instance_text(item: object, index: int) -> str:
    if isinstance(item, dict):
        item = item.get("text")
    return _as_text(item, f"instances[{index}]")


def _as_text(value: object, field: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise InvalidEvent(f"{field} must be a string, got {type(value).__name__}")
    return value


def _pick_tensor(tensors: object, field: str, *, preferred: str, datatype: str) -> dict:
    if not isinstance(tensors, list) or not tensors:
        raise InvalidEvent(f"{field} must be a non-empty list of tensors")
    candidates = [t for t in tensors if isinstance(t, dict)]
    for tensor in candidates:
        if tensor.get("name") == preferred:
            return tensor
    for tensor in candidates:
        if tensor.get("datatype") == datatype:
            return tensor
    raise InvalidEvent(f"{field} has no tensor named {preferred!r} and none of datatype {datatype}")


def _flat_data(tensor: dict, field: str) -> list:
    """The tensor's items, flat (v2 allows nested row-major data), read by ``serving.wire``:
    a given shape must match the data; a logged body without one is read as sent."""
    try:
        return wire.json_tensor(tensor, field).reshape(-1).tolist()
    except InvalidInput as exc:
        raise InvalidEvent(str(exc)) from None
