"""Payload-logger CloudEvents: headers in, model inputs and answers out.

The predictor's logger (ours locally, KServe's agent in a cluster) POSTs each
request and each response as a CloudEvents 1.0 *binary-mode* HTTP message: the
attributes are ``ce-*`` headers and the body is the raw inference JSON.
Structured mode (``application/cloudevents+json``: one JSON envelope) and
batches (``application/cloudevents-batch+json``: a JSON array of structured
events, which driftloop's logger sends when several events are queued) are
understood too. Both the v1 (``instances``/``predictions``) and the v2 Open
Inference Protocol (``inputs``/``outputs``) shapes are understood here: a
request is decoded by the served version's codec (the predictor's own
``decode_v1``/``decode_v2``) and a response becomes one answer dict per
instance, so the rest of the monitor only sees model inputs and answers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from kserve.errors import InvalidInput

from driftloop.blueprints.codec import Batch, Codec, InputError, InputTensor
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


@dataclass(frozen=True, eq=False)
class Sample:
    """One paired instance: its model input (a one-instance slice of what the codec
    decoded) and the answer the model gave for it (one ``Answer.instances`` dict)."""

    model_input: Any
    output: dict


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
    except RecursionError:
        raise InvalidEvent(f"{what} is JSON nested too deeply") from None


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


def request_batch(body: dict, codec: Codec) -> Batch:
    """A logged v1 ``instances`` or v2 ``inputs`` request, decoded by the served version's codec."""
    try:
        if "instances" in body:
            instances = body["instances"]
            if not isinstance(instances, list):
                raise InvalidEvent("request field instances must be a list")
            return codec.decode_v1(instances)
        if "inputs" in body:
            return codec.decode_v2(v2_input_tensors(body["inputs"]))
    except InputError as exc:
        raise InvalidEvent(str(exc)) from None
    raise InvalidEvent("request has neither instances (v1) nor inputs (v2)")


def request_count(body: dict) -> int:
    """How many instances a v1 or v2 request holds, read without a codec."""
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise InvalidEvent("request field instances must be a list")
        return len(instances)
    if "inputs" in body:
        counts = {len(t.array) for t in v2_input_tensors(body["inputs"]).values()}
        if len(counts) != 1:
            raise InvalidEvent(f"inputs have different numbers of rows: {sorted(counts)}")
        return counts.pop()
    raise InvalidEvent("request has neither instances (v1) nor inputs (v2)")


def declared_count(body: dict, side: Literal["request", "response"]) -> int:
    """How many instances a logged request or response holds: its v1 list's length, or the
    first dimension its v2 tensors declare. No tensor is built here (intake calls this for
    every event; the engine's worker decodes the data and checks it against the shape)."""
    list_field, tensor_field = (
        ("instances", "inputs") if side == "request" else ("predictions", "outputs")
    )
    if list_field in body:
        items = body[list_field]
        if not isinstance(items, list):
            raise InvalidEvent(f"{side} field {list_field} must be a list")
        return len(items)
    if tensor_field in body:
        rows = set()
        for tensor in _tensor_list(body[tensor_field], tensor_field):
            shape = tensor.get("shape")
            if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
                raise InvalidEvent(
                    f"{tensor_field}[{tensor['name']}].shape must be a list of non-negative "
                    f"integers, got {shape!r}"
                )
            rows.add(shape[0] if shape else 1)
        if len(rows) != 1:
            raise InvalidEvent(f"{tensor_field} have different numbers of rows: {sorted(rows)}")
        return rows.pop()
    raise InvalidEvent(f"{side} has neither {list_field} (v1) nor {tensor_field} (v2)")


def v2_input_tensors(inputs: object) -> dict[str, InputTensor]:
    """A JSON v2 ``inputs`` list as the named tensors a codec decodes (read by ``serving.wire``)."""
    tensors: dict[str, InputTensor] = {}
    for tensor in _tensor_list(inputs, "inputs"):
        name = str(tensor.get("name"))
        if name in tensors:
            raise InvalidEvent(f"inputs[{name}] appears more than once")
        tensors[name] = InputTensor(name, str(tensor["datatype"]), _array(tensor, "inputs"))
    return tensors


def response_outputs(body: dict) -> list[dict]:
    """Per-instance answers of a v1 ``predictions`` or v2 ``outputs`` response.

    Each is a dict with the keys of the codec's ``Answer.instances`` (e.g.
    ``label``/``probabilities``/``low_confidence``, or ``prediction``). A v2
    output of shape [n] gives each instance its item; one of shape [n, k] a
    list, or a ``{name: value}`` mapping when the response's ``parameters.labels``
    names the k columns (how class probabilities are sent); one of shape [n, k, m]
    a list of k lists. When ``parameters.lengths`` names an [n] output (a detector's
    ``num_detections``), each instance keeps only the first ``lengths[i]`` of the k
    items of the other outputs (the rest is padding), as ``serving.client`` reads them.
    """
    if "predictions" in body:
        predictions = body["predictions"]
        if not isinstance(predictions, list):
            raise InvalidEvent("response field predictions must be a list")
        for index, item in enumerate(predictions):
            if not isinstance(item, dict):
                raise InvalidEvent(
                    f"predictions[{index}] must be an object, got {type(item).__name__}"
                )
        return [dict(item) for item in predictions]
    if "outputs" in body:
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        labels = parameters.get("labels")
        columns = [str(x) for x in labels] if isinstance(labels, list) else None
        arrays: dict[str, np.ndarray] = {}
        count = None
        for tensor in _tensor_list(body["outputs"], "outputs"):
            name = str(tensor.get("name"))
            array = _array(tensor, "outputs")
            if array.ndim == 0:
                array = array.reshape(1)
            if count is not None and len(array) != count:
                raise InvalidEvent(f"outputs[{name}] has {len(array)} rows; others have {count}")
            count = len(array)
            arrays[name] = array
        lengths_name = parameters.get("lengths")
        if lengths_name is not None and lengths_name not in arrays:
            raise InvalidEvent(f"parameters.lengths names {lengths_name!r}, not an output")
        lengths = arrays[lengths_name].astype(int).tolist() if lengths_name else None
        per_output: dict[str, list] = {}
        for name, array in arrays.items():
            if lengths is not None and name != lengths_name and array.ndim >= 2:
                # always a list per instance, however many items it keeps
                per_output[name] = [
                    [_instance_value(item, None) for item in row[:length]]
                    for row, length in zip(array, lengths, strict=True)
                ]
            else:
                per_output[name] = [_instance_value(row, columns) for row in array]
        return [{name: values[i] for name, values in per_output.items()} for i in range(count or 0)]
    raise InvalidEvent("response has neither predictions (v1) nor outputs (v2)")


def pair_samples(request: dict, response: dict, codec: Codec | None) -> list[Sample]:
    """The instances of one inference with their answers (none without a codec: only checked)."""
    outputs = response_outputs(response)
    if codec is None:
        n = request_count(request)
        model_input = None
    else:
        batch = request_batch(request, codec)
        n, model_input = len(batch), batch.model_input
    if n != len(outputs):
        raise InvalidEvent(f"request has {n} instances but response has {len(outputs)} predictions")
    if model_input is None:
        return []
    return [
        Sample(model_input=piece, output=output)
        for piece, output in zip(split_instances(model_input, n), outputs, strict=True)
    ]


def decode_requests(requests: Sequence[dict], codec: Codec) -> list[list | InvalidEvent]:
    """Each logged request's instances (one-instance model inputs), or why it cannot be decoded.

    Runs of requests of the same form (v1 ``instances``, or v2 ``inputs`` with the same
    names, datatypes and trailing shapes) are joined and decoded by one codec call: a
    table's DataFrame or a batch of texts is built once per run, not once per request.
    A run the codec refuses is decoded again request by request, so one bad request
    costs only itself.
    """
    decoded: list[list | InvalidEvent] = [InvalidEvent("not decoded")] * len(requests)
    runs: list[tuple[object, list[int], list]] = []  # (form, request indices, their inputs)
    for index, body in enumerate(requests):
        try:
            form, inputs = _request_form(body)
        except InvalidEvent as exc:
            decoded[index] = exc
            continue
        if runs and runs[-1][0] == form:
            runs[-1][1].append(index)
            runs[-1][2].append(inputs)
        else:
            runs.append((form, [index], [inputs]))
    for form, indices, inputs in runs:
        try:
            pieces: list = _decode_run(form, inputs, codec)
        except InvalidEvent as exc:
            if len(indices) == 1:
                decoded[indices[0]] = exc
                continue
            pieces = []
            for one in inputs:  # find the bad ones: each request alone
                try:
                    pieces.append(_decode_run(form, [one], codec)[0])
                except InvalidEvent as alone:
                    pieces.append(alone)
        for index, request_pieces in zip(indices, pieces, strict=True):
            decoded[index] = request_pieces
    return decoded


def _request_form(body: dict) -> tuple[object, object]:
    """What a request's inputs look like (requests of one form decode together), and them."""
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise InvalidEvent("request field instances must be a list")
        return "v1", instances
    if "inputs" in body:
        tensors = v2_input_tensors(body["inputs"])
        form = tuple(
            (t.name, t.datatype, t.array.shape[1:], t.array.dtype.str) for t in tensors.values()
        )
        return ("v2", form), tensors
    raise InvalidEvent("request has neither instances (v1) nor inputs (v2)")


def _decode_run(form: object, inputs: list, codec: Codec) -> list[list]:
    """Decode requests of one form in a single codec call; each request's instance pieces."""
    counts = [_instance_count(form, one) for one in inputs]
    try:
        if form == "v1":
            batch = codec.decode_v1([instance for one in inputs for instance in one])
        else:
            first = inputs[0]
            joined = {
                name: InputTensor(
                    name,
                    tensor.datatype,
                    np.concatenate([one[name].array for one in inputs])
                    if len(inputs) > 1
                    else tensor.array,
                )
                for name, tensor in first.items()
            }
            batch = codec.decode_v2(joined)
    except InputError as exc:
        raise InvalidEvent(str(exc)) from None
    total = sum(counts)
    if len(batch) != total:
        raise InvalidEvent(f"requests hold {total} instances but decode to {len(batch)}")
    pieces = split_instances(batch.model_input, total)
    result, start = [], 0
    for count in counts:
        result.append(pieces[start : start + count])
        start += count
    return result


def _instance_count(form: object, inputs: object) -> int:
    if form == "v1":
        return len(inputs)  # type: ignore[arg-type]
    counts = {len(t.array) for t in inputs.values()}  # type: ignore[union-attr]
    if len(counts) != 1:
        raise InvalidEvent(f"inputs have different numbers of rows: {sorted(counts)}")
    return counts.pop()


# --- one instance at a time ---------------------------------------------------------
# A model input is whatever the codec builds (a list of texts, a table's DataFrame,
# an array of images); the monitor cuts it into instances and joins a window back.
def split_instances(model_input: object, n: int) -> list:
    if isinstance(model_input, pd.DataFrame):
        return [model_input.iloc[i : i + 1] for i in range(n)]
    if isinstance(model_input, np.ndarray):
        return [model_input[i : i + 1] for i in range(n)]
    items = list(model_input)  # type: ignore[call-overload]
    return [items[i : i + 1] for i in range(n)]


def join_instances(pieces: Sequence) -> object:
    first = pieces[0]
    if isinstance(first, pd.DataFrame):
        return pd.concat(list(pieces), ignore_index=True)
    if isinstance(first, np.ndarray):
        return np.concatenate(list(pieces))
    return [item for piece in pieces for item in piece]


def _tensor_list(tensors: object, field: str) -> list[dict]:
    if not isinstance(tensors, list) or not tensors:
        raise InvalidEvent(f"{field} must be a non-empty list of tensors")
    for index, tensor in enumerate(tensors):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidEvent(f"{field}[{index}] must be a tensor object with a name")
    return tensors


def _array(tensor: dict, field: str) -> np.ndarray:
    """The tensor's data, shaped as declared, read by ``serving.wire``."""
    try:
        return wire.json_tensor(tensor, field)
    except InvalidInput as exc:
        raise InvalidEvent(str(exc)) from None


def _instance_value(row: object, columns: list[str] | None) -> object:
    if isinstance(row, np.ndarray) and row.ndim >= 2:  # a row of an [n, k, m] output
        return [_instance_value(item, None) for item in row]
    if isinstance(row, np.ndarray):
        items = [_plain(v) for v in row.reshape(-1).tolist()]
        if row.size == 1 and row.ndim <= 1:
            return items[0]
        if columns is not None and len(columns) == len(items):
            return dict(zip(columns, items, strict=True))
        return items
    return _plain(row)


def _plain(value: object) -> object:
    if isinstance(value, bytes | bytearray | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
