"""Payload-logger CloudEvents: headers in, texts/labels out.

The predictor's logger (ours locally, KServe's agent in a cluster) POSTs each
request and each response as a CloudEvents 1.0 *binary-mode* HTTP message: the
attributes are ``ce-*`` headers and the body is the raw inference JSON. Both
the v1 (``instances``/``predictions``) and the v2 Open Inference Protocol
(``inputs``/``outputs``) shapes are understood here so the rest of the
monitor only sees lists of texts and lists of labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"

EventKind = Literal["request", "response"]


class InvalidEvent(ValueError):
    """An event the monitor cannot use; the message names the header or field."""


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


def parse_event(headers: Mapping[str, str], body: bytes) -> InferenceEvent:
    """Validate a binary-mode CloudEvent and decode its JSON body."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get("content-type", "").startswith("application/cloudevents+json"):
        lowered = _structured_to_binary(body, lowered)
        body = lowered.pop("__data__")
    spec = lowered.get("ce-specversion")
    if spec != "1.0":
        raise InvalidEvent(f"header ce-specversion must be 1.0, got {spec!r}")
    event_id = (lowered.get("ce-id") or "").strip()
    if not event_id:
        raise InvalidEvent("header ce-id is missing")
    event_type = lowered.get("ce-type")
    if event_type == REQUEST_TYPE:
        kind: EventKind = "request"
    elif event_type == RESPONSE_TYPE:
        kind = "response"
    else:
        raise InvalidEvent(
            f"header ce-type must be {REQUEST_TYPE} or {RESPONSE_TYPE}, got {event_type!r}"
        )
    content_type = lowered.get("content-type", "application/json")
    if "json" not in content_type:
        raise InvalidEvent(f"header content-type must be application/json, got {content_type!r}")
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise InvalidEvent("body must be a JSON object")
    model = lowered.get("ce-inferenceservicename") or None
    return InferenceEvent(event_id=event_id, kind=kind, model=model, body=decoded)


def _structured_to_binary(body: bytes, headers: dict[str, str]) -> dict:
    """Structured mode (one JSON envelope) mapped onto the binary-mode headers."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"structured CloudEvent body is not valid JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise InvalidEvent("structured CloudEvent body must be a JSON object")
    mapped = {f"ce-{key}": str(value) for key, value in envelope.items() if key != "data"}
    mapped["content-type"] = str(envelope.get("datacontenttype", "application/json"))
    mapped["__data__"] = json.dumps(envelope.get("data")).encode()
    return mapped


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
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidEvent(f"{field}[{tensor.get('name')}].data must be a list")
    # v2 allows nested (row-major) data as well as flat lists
    return list(_flatten(data))


def _flatten(items: list):
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item
