"""One wire-format parser shared by predictor, monitor and client: the Open Inference Protocol.

Tensors reach driftloop in four encodings, and every reader goes through here:

- REST JSON: ``"data"`` (flat or nested row-major lists);
- REST binary tensor extension: a JSON header of ``Inference-Header-Content-Length``
  bytes, then each input's bytes (``parameters.binary_data_size``); BYTES items are
  4-byte little-endian length prefixed (what ``tritonclient.http`` sends by default);
- gRPC typed contents (``contents.bytes_contents``, ``fp32_contents``, ...);
- gRPC ``raw_input_contents`` (what ``tritonclient.grpc`` sends by default).

Decoding and encoding reuse KServe's own ``InferRequest.from_bytes``,
``InferResponse.to_rest``/``from_bytes``/``from_rest`` and its tensor codecs; what
this module adds is the checks around them, so that every bad tensor is a
``kserve.errors.InvalidInput`` (HTTP 400 / gRPC INVALID_ARGUMENT) whose message
names the field, and one rule for when an output travels as binary data.

KServe 0.21 has no public accessor for a tensor's raw bytes; ``_raw_data`` is read
here (as KServe's own ``to_rest``/``to_grpc`` do) and nowhere else in driftloop.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from math import prod
from typing import Any

import numpy as np
import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InferenceError, InvalidInput
from kserve.protocol.infer_type import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
    deserialize_bytes_tensor,
    to_http_parameters,
)
from kserve.protocol.rest.v2_datamodels import InferenceRequest
from kserve.utils.numpy_codec import to_np_dtype
from pydantic import ValidationError

__all__ = [
    "INFERENCE_CONTENT_LENGTH_HEADER",
    "encode_rest_response",
    "infer_response",
    "input_tensor",
    "inputs_by_name",
    "JsonInferResponse",
    "json_output",
    "json_tensor",
    "output_tensor",
    "output_tensor_array",
    "parse_rest_body",
    "parse_rest_response",
    "plain_json_answer",
    "wants_binary_output",
]


# --- tensors in ----------------------------------------------------------------------
def input_tensor(infer_input: InferInput) -> np.ndarray:
    """The input's data as an array of its declared shape, whatever encoding carried it.

    BYTES come back as an object array of ``bytes`` (binary encodings, gRPC) or of
    ``str`` (JSON, and binary REST inputs, which KServe decodes as UTF-8).
    """
    return _tensor(infer_input, f"inputs[{infer_input.name}]")


def output_tensor_array(infer_output: InferOutput) -> np.ndarray:
    """The same as :func:`input_tensor` for a response's output (messages say ``outputs[NAME]``)."""
    return _tensor(infer_output, f"outputs[{infer_output.name}]")


def json_tensor(tensor: Mapping[str, Any], field: str = "inputs") -> np.ndarray:
    """A tensor given as a decoded JSON object (e.g. from a logged body) as an array.

    ``field`` is ``"inputs"`` or ``"outputs"``. A missing ``shape`` reads the data
    flat (logged bodies are read leniently); a given shape must match.
    """
    name = tensor.get("name")
    label = f"{field}[{name}]"
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidInput(f"{label}.datatype must be a string, got {datatype!r}")
    flat = _flat_from_data(tensor.get("data"), datatype, label)
    shape = tensor.get("shape")
    if shape is None:
        return flat
    return _shaped(flat, _checked_shape(shape, label), label)


def inputs_by_name(request: InferRequest) -> dict[str, InferInput]:
    """The request's inputs keyed by name; no inputs or a repeated name is an InvalidInput."""
    inputs = list(getattr(request, "inputs", None) or [])
    if not inputs:
        raise InvalidInput('missing "inputs": the request has no input tensors')
    named: dict[str, InferInput] = {}
    for infer_input in inputs:
        if infer_input.name in named:
            raise InvalidInput(f"inputs[{infer_input.name}] appears more than once")
        named[infer_input.name] = infer_input
    return named


def _tensor(tensor: InferInput | InferOutput, field: str) -> np.ndarray:
    shape = _checked_shape(tensor.shape, field)
    raw = getattr(tensor, "_raw_data", None)
    if raw is not None:
        flat = _flat_from_raw(raw, tensor.datatype, field)
    else:
        flat = _flat_from_data(tensor.data, tensor.datatype, field)
    return _shaped(flat, shape, field)


def _checked_shape(shape: Any, field: str) -> list[int]:
    dims = list(shape) if isinstance(shape, list | tuple) else None
    if dims is None or any(
        isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0 for d in dims
    ):
        raise InvalidInput(f"{field}.shape must be a list of non-negative ints, got {shape}")
    return [int(d) for d in dims]


def _shaped(flat: np.ndarray, shape: list[int], field: str) -> np.ndarray:
    if flat.size != prod(shape):
        raise InvalidInput(f"{field}.shape {shape} does not match its {flat.size} data items")
    return flat.reshape(shape)


def _np_dtype(datatype: str, field: str) -> Any:
    dtype = to_np_dtype(datatype)
    if dtype is None:
        raise InvalidInput(f'{field}.datatype "{datatype}" is not an Open Inference Protocol type')
    return dtype


def _flat_from_raw(raw: bytes, datatype: str, field: str) -> np.ndarray:
    dtype = _np_dtype(datatype, field)
    if datatype == "BYTES":
        try:
            return deserialize_bytes_tensor(raw)
        except struct.error as exc:
            raise InvalidInput(
                f"{field} has unreadable data: BYTES items must be 4-byte little-endian "
                f"length-prefixed ({exc})"
            ) from exc
    itemsize = np.dtype(dtype).itemsize
    if len(raw) % itemsize:
        raise InvalidInput(
            f"{field} has unreadable data: {len(raw)} bytes is not a whole number of "
            f"{datatype} items ({itemsize} bytes each)"
        )
    return np.frombuffer(raw, dtype=dtype)


def _flat_from_data(data: Any, datatype: str, field: str) -> np.ndarray:
    dtype = _np_dtype(datatype, field)
    if isinstance(data, np.ndarray):
        return data.reshape(-1)
    if not isinstance(data, list | tuple):
        raise InvalidInput(f"{field}.data must be a list, got {type(data).__name__}")
    flat = list(_flatten(data))
    if dtype is np.object_:
        array = np.empty(len(flat), dtype=np.object_)
        array[:] = flat
        return array
    for index, item in enumerate(flat):
        problem = _item_problem(item, np.dtype(dtype), datatype)
        if problem:
            raise InvalidInput(f"{field} has unreadable {datatype} data: item {index} {problem}")
    try:
        return np.array(flat, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{field} has unreadable {datatype} data: {exc}") from exc


def _item_problem(item: Any, dtype: np.dtype, datatype: str) -> str | None:
    """Why a JSON/typed item does not fit ``datatype`` (None: it fits).

    Checked before numpy casts, which would silently read 2.5 as the INT64 2, wrap
    300 into a UINT8 (44), read the text "1.5" or ``true`` as an FP32, and null as
    the BOOL false.
    """
    if isinstance(item, bool | np.bool_):
        return None if dtype.kind == "b" else f"is {item!r}, not a number"
    if dtype.kind == "b":
        if item is None:
            return "is null: a BOOL tensor has no missing value; send true or false"
        return f"is {item!r}, not true or false"
    if item is None:
        if dtype.kind == "f":
            return None  # null is a missing number: NaN
        return f"is null: an {datatype} tensor has no missing value; send FP32/FP64 with null"
    if not isinstance(item, int | float | np.integer | np.floating):
        return f"is {item!r}, not a number"
    if dtype.kind in "iu":
        if isinstance(item, float | np.floating) and not float(item).is_integer():
            return f"is {item!r}, not an integer"
        limits = np.iinfo(dtype)
        if not limits.min <= int(item) <= limits.max:
            return f"is {item!r}, outside {datatype}'s range {limits.min}..{limits.max}"
    return None


def _flatten(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list | tuple):
            yield from _flatten(item)
        else:
            yield item


# --- tensors out ---------------------------------------------------------------------
def wants_binary_output(request: InferRequest | None, name: str) -> bool:
    """Whether output ``name`` travels as binary data for this request.

    REST: the requested output's ``parameters.binary_data`` if given, else the
    request's ``parameters.binary_data_output`` (OIP binary tensor extension).
    gRPC: one answer for every output (raw_output_contents are all or nothing):
    raw when the inputs came as raw_input_contents (KServe's rule) or the request
    sets ``binary_data_output``.
    """
    if request is None:
        return False
    parameters = to_http_parameters(request.parameters) if request.parameters else {}
    default = bool(parameters.get("binary_data_output", False))
    if request.from_grpc:
        return bool(request.use_binary_outputs) or default
    for requested in request.request_outputs or []:
        if requested.name == name and requested.binary_data is not None:
            return bool(requested.binary_data)
    return default


def output_tensor(
    name: str, array: Any, datatype: str, request: InferRequest | None
) -> InferOutput:
    """An ``InferOutput`` of ``array``: binary data when the request asked for it, else JSON."""
    dtype = to_np_dtype(datatype)
    if dtype is None:
        raise InferenceError(f'output {name}: "{datatype}" is not an Open Inference Protocol type')
    if dtype is np.object_:
        values = np.asarray(array, dtype=np.object_)
    else:
        values = np.asarray(array).astype(dtype, copy=False)
    output = InferOutput(name, list(values.shape), datatype)
    output.set_data_from_numpy(values, binary_data=wants_binary_output(request, name))
    return output


def plain_json_answer(request: InferRequest | None) -> bool:
    """Whether the answer to ``request`` is plain REST JSON: every output as JSON ``data``,
    none filtered by ``outputs`` (not gRPC, no binary outputs, no requested outputs)."""
    if request is None or request.from_grpc or request.request_outputs:
        return False
    parameters = to_http_parameters(request.parameters) if request.parameters else {}
    return not parameters.get("binary_data_output", False)


def json_output(name: str, array: Any, datatype: str) -> dict:
    """One output as REST JSON, as KServe's ``set_data_from_numpy(binary_data=False)`` and
    ``to_rest`` write it: numbers cast to ``datatype``, BYTES items as UTF-8 text."""
    dtype = to_np_dtype(datatype)
    if dtype is None:
        raise InferenceError(f'output {name}: "{datatype}" is not an Open Inference Protocol type')
    if datatype == "FP16":
        raise InferenceError(f"output {name}: FP16 cannot travel as JSON; ask for binary data")
    if dtype is np.object_:
        values = np.asarray(array, dtype=np.object_)
        try:
            data = [
                str(item, encoding="utf-8") if isinstance(item, bytes) else str(item)
                for item in values.reshape(-1).tolist()
            ]
        except UnicodeDecodeError as exc:
            raise InferenceError(f"output {name} is not UTF-8 text: {exc.reason}") from None
    else:
        values = np.asarray(array).astype(dtype, copy=False)
        data = values.reshape(-1).tolist()
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": data}


class JsonInferResponse(InferResponse):
    """An ``InferResponse`` whose REST JSON form is already built (``body``, e.g. the one
    dict the payload logger also sends): ``to_rest`` hands it over instead of converting
    every output from numpy to a list again. Only for :func:`plain_json_answer` requests."""

    def __init__(self, body: dict) -> None:
        super().__init__(
            response_id=body["id"],
            model_name=body["model_name"],
            model_version=body.get("model_version"),
            infer_outputs=[
                InferOutput(o["name"], o["shape"], o["datatype"], data=o["data"])
                for o in body["outputs"]
            ],
            parameters=body.get("parameters") or None,
        )
        # KServe leaves empty parameters out of the answer
        self._rest_body = body if body.get("parameters") else _without_parameters(body)

    def to_rest(self) -> tuple[dict, None]:
        return self._rest_body, None


def _without_parameters(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "parameters"}


def infer_response(
    request: InferRequest,
    *,
    response_id: str,
    model_name: str,
    outputs: list[InferOutput],
    model_version: str | None = None,
    parameters: dict | None = None,
) -> InferResponse:
    """An ``InferResponse`` that KServe's ``to_rest``/``to_grpc`` encode the way
    :func:`wants_binary_output` decided (and, on REST, only the requested outputs)."""
    requested = None
    if request.request_outputs and not request.from_grpc:
        requested = [
            RequestedOutput(
                r.name,
                {
                    **(to_http_parameters(r.parameters) if r.parameters else {}),
                    "binary_data": wants_binary_output(request, r.name),
                },
            )
            for r in request.request_outputs
        ]
    use_binary = any(wants_binary_output(request, o.name) for o in outputs)
    return InferResponse(
        response_id=response_id,
        model_name=model_name,
        model_version=model_version,
        infer_outputs=outputs,
        parameters=parameters,
        from_grpc=request.from_grpc,
        use_binary_outputs=use_binary,
        requested_outputs=requested,
    )


# --- REST bodies ---------------------------------------------------------------------
def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _json_document(raw: bytes, what: str) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not valid UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInput(f'{what} must be a JSON object with "inputs"')
    if "inputs" not in document:
        raise InvalidInput('missing "inputs": send [{"name": "text", "datatype": "BYTES", ...}]')
    return document


def _validated(document: dict) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"invalid v2 inference request: {problems}") from exc


def parse_rest_body(
    body: bytes, headers: Mapping[str, str] | None, model_name: str
) -> InferRequest:
    """A REST v2 infer body: JSON, or the binary tensor extension when the
    ``Inference-Header-Content-Length`` header is present."""
    length = _header(headers, INFERENCE_CONTENT_LENGTH_HEADER)
    if length is None:
        request = _validated(_json_document(body, "request body"))
        return InferRequest.from_inference_request(request, model_name)
    return _parse_binary_body(body, length, model_name)


def _parse_binary_body(body: bytes, length: str, model_name: str) -> InferRequest:
    header = INFERENCE_CONTENT_LENGTH_HEADER
    try:
        json_length = int(length.strip())
    except ValueError:
        raise InvalidInput(f"header {header} must be a byte count, got {length!r}") from None
    if not 0 < json_length <= len(body):
        raise InvalidInput(
            f"header {header} is {json_length} but the request body has {len(body)} bytes"
        )
    document = _json_document(body[:json_length], "request JSON header")
    # the schema wants "data" on every input; binary inputs carry theirs after the header
    inputs = document.get("inputs")
    binary: list[tuple[str, str, Any, int]] = []
    if isinstance(inputs, list):
        placeholders = []
        for tensor in inputs:
            size = _binary_size(tensor)
            if size is not None and "data" not in tensor:
                binary.append(
                    (tensor.get("name"), tensor.get("datatype"), tensor.get("shape"), size)
                )
                tensor = {**tensor, "data": []}
            placeholders.append(tensor)
        _validated({**document, "inputs": placeholders})
    else:
        _validated(document)
    rest = body[json_length:]
    declared = sum(size for *_, size in binary)
    if declared != len(rest):
        raise InvalidInput(
            f"the binary part after the JSON header is {len(rest)} bytes but the inputs' "
            f"binary_data_size add up to {declared}"
        )
    start = 0
    for name, datatype, shape, size in binary:
        field = f"inputs[{name}]"
        datatype = str(datatype).upper()
        flat = _flat_from_raw(rest[start : start + size], datatype, field)
        _shaped(flat, _checked_shape(shape, field), field)
        if datatype == "BYTES":
            for index, item in enumerate(flat):
                try:
                    item.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InvalidInput(
                        f"{field}[{index}] is not valid UTF-8: {exc.reason}"
                    ) from exc
        start += size
    try:
        return InferRequest.from_bytes(body, json_length, model_name)
    except (InferenceError, KeyError, TypeError, ValueError, struct.error) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"binary request could not be read: {exc}") from exc


def _binary_size(tensor: Any) -> int | None:
    if not isinstance(tensor, dict):
        return None
    parameters = tensor.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInput(
            f"inputs[{tensor.get('name')}].parameters.binary_data_size must be a "
            f"non-negative int, got {size!r}"
        )
    return size


def encode_rest_response(response: InferResponse | dict) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a REST v2 answer: JSON, or JSON header + binary outputs with
    the ``Inference-Header-Content-Length`` header (KServe's ``to_rest``)."""
    if isinstance(response, InferResponse):
        encoded, json_length = response.to_rest()
        if json_length is not None:
            return encoded, {
                "content-type": "application/octet-stream",
                INFERENCE_CONTENT_LENGTH_HEADER: str(json_length),
            }
        response = encoded
    body = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    return body, {"content-type": "application/json"}


def parse_rest_response(body: bytes, headers: Mapping[str, str] | None = None) -> InferResponse:
    """A REST v2 answer (JSON, or binary outputs after a JSON header) as an ``InferResponse``."""
    length = _header(headers, INFERENCE_CONTENT_LENGTH_HEADER)
    try:
        if length is not None:
            return InferResponse.from_bytes(body, int(length))
        return InferResponse.from_rest(orjson.loads(body))
    except InvalidInput:
        raise
    except (InferenceError, KeyError, TypeError, ValueError, struct.error) as exc:
        raise InvalidInput(f"v2 answer could not be read: {exc!r}") from exc
