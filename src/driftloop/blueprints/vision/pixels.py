"""Model inputs as uint8 [n, H, W, C] arrays, from whatever form an image arrives in.

Every vision model (the CNN and the pixel baselines) takes the same inputs:

* a uint8 array [n, H, W] or [n, H, W, C] of the model's shape (a training
  frame's ``features``, a v2 UINT8 tensor);
* encoded images -- PNG or JPEG bytes, or their base64 text -- in a list or in
  the ``image`` column of a DataFrame (MLflow's input example, ``mlflow.pyfunc``
  callers, v2 BYTES, v1 ``{"b64": ...}``); an encoded image is converted to the
  model's mode and resized (bilinear) to its size, as the training images were;
* a canonical image frame (``pixels``/``height``/``width``/``channels``).

Problems raise ``InputError`` naming the field (the predictor answers 400).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.codec import InputError

IMAGE_COLUMN = "image"
# an encoded image larger than this is refused before it is decoded
MAX_ENCODED_BYTES = 8 * 1024 * 1024
_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def format_of(data: bytes) -> str | None:
    return next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)


def feedback_pixels(inputs: Sequence[Any], column: str) -> list[np.ndarray]:
    """The pixels of stored request summaries (``{column: base64 PNG}`` or the encoded
    image itself), each as the model saw it."""
    from driftloop.datasets.images import open_image

    pixels = []
    for index, summary in enumerate(inputs):
        value = summary.get(column) if isinstance(summary, dict) else summary
        data = encoded_bytes(value, f"feedback input {index}")
        pixels.append(np.asarray(open_image(data, f"feedback input {index}")))
    return pixels


def encoded_bytes(value: Any, field: str) -> bytes:
    """PNG/JPEG bytes from raw bytes or base64 text (``data:`` URL prefix allowed)."""
    if isinstance(value, dict) and "b64" in value:
        value = value["b64"]
    if isinstance(value, np.bytes_ | bytearray | memoryview):
        value = bytes(value)
    if isinstance(value, bytes) and format_of(value) is None:
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise InputError(f"{field} is not a PNG or JPEG image") from None
    if isinstance(value, str):
        text = value.split(",", 1)[1] if value.startswith("data:") else value
        if len(text) > MAX_ENCODED_BYTES * 4 // 3 + 4:
            raise InputError(f"{field} is larger than {MAX_ENCODED_BYTES} bytes")
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{field} is neither PNG/JPEG bytes nor their base64 text") from None
    if not isinstance(value, bytes):
        raise InputError(
            f"{field} must be a base64-encoded PNG or JPEG image, got {type(value).__name__}"
        )
    if len(value) > MAX_ENCODED_BYTES:
        raise InputError(f"{field} is {len(value)} bytes; at most {MAX_ENCODED_BYTES}")
    if format_of(value) is None:
        raise InputError(f"{field} is not a PNG or JPEG image (unsupported format)")
    return value


def decode_image(value: Any, shape: Sequence[int], field: str) -> np.ndarray:
    """One encoded image as uint8 [H, W, C] of the model's ``shape`` (H, W, C)."""
    from driftloop.datasets.errors import DatasetValidationError
    from driftloop.datasets.images import conformed, open_image

    data = encoded_bytes(value, field)
    try:
        image = open_image(data, field)
    except DatasetValidationError as exc:
        raise InputError(str(exc)) from None
    height, width, channels = (int(d) for d in shape)
    pixels = conformed(image, "L" if channels == 1 else "RGB", (width, height))
    return pixels.reshape(height, width, channels)


def encode_png_b64(pixels: np.ndarray) -> str:
    """Base64 text of a lossless PNG of uint8 [H, W, C] pixels (summaries, input examples)."""
    from driftloop.datasets.images import png_bytes

    return base64.b64encode(png_bytes(pixels)).decode("ascii")


def shaped_pixels(array: np.ndarray, shape: Sequence[int] | None, field: str) -> np.ndarray:
    """A uint8 [n, H, W(, C)] array checked against the model's (H, W, C)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise InputError(f"{field} must hold UINT8 pixels (0..255), got {array.dtype}")
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4:
        raise InputError(
            f"{field}.shape must be [n, H, W] or [n, H, W, C], got {list(array.shape)}"
        )
    if shape is not None and tuple(array.shape[1:]) != tuple(shape):
        height, width, channels = shape
        expected = f"[n, {height}, {width}]" + (
            f" or [n, {height}, {width}, 1]"
            if channels == 1
            else f" ... [n, {height}, {width}, {channels}]"
        )
        raise InputError(
            f"{field}.shape must be {expected} for this model, got {list(array.shape)}"
        )
    return array


def as_images(inputs: Any, shape: Sequence[int] | None, field: str = "inputs") -> np.ndarray:
    """Any accepted model input (see the module docstring) as uint8 [n, H, W, C]."""
    if isinstance(inputs, pd.DataFrame):
        if "pixels" in inputs.columns:
            from driftloop.datasets.images import frame_pixels

            return shaped_pixels(frame_pixels(inputs), shape, field)
        if IMAGE_COLUMN not in inputs.columns:
            raise InputError(
                f"{field} needs an {IMAGE_COLUMN!r} column of base64 PNG/JPEG images "
                f"(columns: {', '.join(map(str, inputs.columns))})"
            )
        inputs = inputs[IMAGE_COLUMN].tolist()
    if isinstance(inputs, np.ndarray) and inputs.dtype != object:
        return shaped_pixels(inputs, shape, field)
    if shape is None:
        raise InputError(f"{field}: encoded images need a fitted model (its image shape)")
    values = list(inputs)
    if not values:
        return np.zeros((0, *shape), dtype=np.uint8)
    return np.stack([decode_image(v, shape, f"{field}[{i}]") for i, v in enumerate(values)])
