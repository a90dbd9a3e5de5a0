"""Turn v1/v2 request payloads into a checked list of texts, or say exactly what is wrong.

Every problem raises ``kserve.errors.InvalidInput``, which KServe maps to HTTP
400 ``{"error": ...}`` and gRPC ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from math import prod
from typing import Any

from kserve.errors import InvalidInput

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
    """The ``text`` BYTES input of a v2 ``InferRequest`` (REST or gRPC)."""
    inputs = list(getattr(request, "inputs", None) or [])
    if not inputs:
        raise InvalidInput('missing "inputs": send one BYTES input named "text"')
    named = [i for i in inputs if i.name == TEXT_INPUT]
    if not named and len(inputs) > 1:
        raise InvalidInput(f'no input named "{TEXT_INPUT}" among {[i.name for i in inputs]}')
    infer_input = named[0] if named else inputs[0]
    field = f"inputs[{infer_input.name}]"
    if infer_input.datatype != "BYTES":
        raise InvalidInput(f'{field}.datatype must be "BYTES", got "{infer_input.datatype}"')
    data = _raw_data(infer_input)
    shape = list(infer_input.shape or [])
    if not shape or any((not isinstance(d, int)) or d < 0 for d in shape):
        raise InvalidInput(f"{field}.shape must be a list of non-negative ints, got {shape}")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InvalidInput(f"{field}.shape must be [n] or [n, 1], got {shape}")
    if prod(shape) != len(data):
        raise InvalidInput(f"{field}.shape {shape} does not match its {len(data)} data items")
    return check_texts(data, max_instances=max_instances, max_chars=max_chars, field=field)


def _raw_data(infer_input: Any) -> list[Any]:
    data = infer_input.data
    if data is None:
        # gRPC requests carry BYTES in contents.bytes_contents / raw_input_contents
        try:
            array = infer_input.as_numpy()
        except Exception as exc:  # malformed tensor content
            raise InvalidInput(f"inputs[{infer_input.name}] has unreadable data: {exc}") from exc
        return array.reshape(-1).tolist()
    if hasattr(data, "reshape"):
        return data.reshape(-1).tolist()
    if not isinstance(data, list):
        raise InvalidInput(f"inputs[{infer_input.name}].data must be a list of strings")
    flat: list[Any] = []
    for item in data:
        flat.extend(item if isinstance(item, list) else [item])
    return flat
