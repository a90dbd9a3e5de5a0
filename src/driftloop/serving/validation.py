"""Turn v1/v2 request payloads into a checked list of texts, or say exactly what is wrong.

Every problem raises ``kserve.errors.InvalidInput``, which KServe maps to HTTP
400 ``{"error": ...}`` and gRPC ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from typing import Any

from kserve.errors import InvalidInput

from driftloop.serving import wire

TEXT_INPUT = "text"


def check_texts(texts: list[Any], *, max_instances: int, max_chars: int, field: str) -> list[str]:
    if len(texts) == 0:
        raise InvalidInput(f"{field} is empty: send at least one text")
    if len(texts) > max_instances:
        raise InvalidInput(f"{field} has {len(texts)} items; at most {max_instances} per request")
    checked = []
    for index, text in enumerate(texts):
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"{field}[{index}] is not valid UTF-8: {exc.reason}") from exc
        if not isinstance(text, str):
            raise InvalidInput(f"{field}[{index}] must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInput(f"{field}[{index}] is an empty text")
        if len(text) > max_chars:
            raise InvalidInput(f"{field}[{index}] has {len(text)} characters; at most {max_chars}")
        checked.append(text)
    return checked


def texts_from_v1(body: Any, *, max_instances: int, max_chars: int) -> list[str]:
    """``{"instances": ["text", ...]}`` (items may also be ``{"text": ...}``)."""
    if not isinstance(body, dict):
        raise InvalidInput('request body must be a JSON object with "instances"')
    if "instances" not in body:
        raise InvalidInput('missing "instances": send {"instances": ["text", ...]}')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidInput('"instances" must be a list of strings')
    texts = [item.get(TEXT_INPUT) if isinstance(item, dict) else item for item in instances]
    return check_texts(texts, max_instances=max_instances, max_chars=max_chars, field="instances")


def texts_from_v2(request: Any, *, max_instances: int, max_chars: int) -> list[str]:
    """The ``text`` BYTES input of a v2 ``InferRequest``: REST JSON, REST binary tensor
    extension, gRPC ``bytes_contents`` or gRPC ``raw_input_contents`` (read by ``serving.wire``)."""
    if not list(getattr(request, "inputs", None) or []):
        raise InvalidInput('missing "inputs": send one BYTES input named "text"')
    named = wire.inputs_by_name(request)
    if TEXT_INPUT not in named and len(named) > 1:
        raise InvalidInput(f'no input named "{TEXT_INPUT}" among {list(named)}')
    infer_input = named.get(TEXT_INPUT) or next(iter(named.values()))
    field = f"inputs[{infer_input.name}]"
    if infer_input.datatype != "BYTES":
        raise InvalidInput(f'{field}.datatype must be "BYTES", got "{infer_input.datatype}"')
    shape = list(infer_input.shape or [])
    if not shape or any((not isinstance(d, int)) or d < 0 for d in shape):
        raise InvalidInput(f"{field}.shape must be a list of non-negative ints, got {shape}")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InvalidInput(f"{field}.shape must be [n] or [n, 1], got {shape}")
    data = _raw_data(infer_input)
    return check_texts(data, max_instances=max_instances, max_chars=max_chars, field=field)


def _raw_data(infer_input: Any) -> list[Any]:
    """The input's items, flat, whichever encoding carried them (shape checked against them)."""
    return wire.input_tensor(infer_input).reshape(-1).tolist()
