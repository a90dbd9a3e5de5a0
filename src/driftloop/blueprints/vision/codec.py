"""Images on the wire: one input ``image``; label, probabilities, low-confidence out.

v2 ``image`` is either

* ``UINT8`` ``[n, H, W]`` or ``[n, H, W, C]`` of exactly the model's size (raw pixels,
  e.g. tritonclient's binary tensors), or
* ``BYTES`` ``[n]`` (or ``[n, 1]``) of PNG or JPEG images: raw bytes (gRPC) or their
  base64 text (REST: JSON, and the binary extension, whose BYTES KServe reads as
  UTF-8 text). Encoded images are converted and resized to the model's mode and size.

v1 ``{"instances": [{"b64": "..."}, ...]}`` (also ``{"image": "..."}`` or a bare
base64 string, or an [H][W](C) list of 0..255 pixels). The metadata declares the
BYTES form (what generic clients and the smoke test send); UINT8 is accepted
under the same name. A corrupt image, an unsupported format, a wrong shape or
datatype, or an image over ``pixels.MAX_ENCODED_BYTES`` is an ``InputError``
naming the field. Each instance is stored as ``{"image": <base64 PNG of the
pixels the model saw>}`` (a few hundred bytes for 28x28).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.codec import (
    CLASSIFICATION_OUTPUTS,
    Answer,
    Batch,
    Codec,
    InputError,
    InputTensor,
    Limits,
    TensorSpec,
    classification_answer,
    column_values,
    named_input,
)
from driftloop.blueprints.vision.pixels import (
    IMAGE_COLUMN,
    as_images,
    decode_image,
    encode_png_b64,
    shaped_pixels,
)


def image_shape(model: Any) -> tuple[int, int, int]:
    """The (H, W, C) a fitted vision model takes (the CNN, or a pipeline's PixelFeatures)."""
    for part in [model, *(step for _, step in getattr(model, "steps", []))]:
        shape = getattr(part, "image_shape_", None)
        if shape is not None:
            return tuple(int(d) for d in shape)
    raise ValueError("the model has no image_shape_: is it a fitted vision model?")


class ImageCodec(Codec):
    outputs = CLASSIFICATION_OUTPUTS

    def __init__(self, model: Any, limits: Limits) -> None:
        super().__init__(model, limits)
        self.shape = image_shape(model)
        self.inputs = (TensorSpec(IMAGE_COLUMN, "BYTES", (-1,)),)

    def _batch(self, images: np.ndarray) -> Batch:
        return Batch(
            model_input=images, summaries=[{IMAGE_COLUMN: encode_png_b64(i)} for i in images]
        )

    def decode_v1(self, instances: list[Any]) -> Batch:
        self.check_count(len(instances), "instances", "image")
        images = []
        for index, item in enumerate(instances):
            field = f"instances[{index}]"
            if isinstance(item, dict):
                key = next((k for k in ("b64", IMAGE_COLUMN) if k in item), None)
                if key is None:
                    raise InputError(f'{field} needs "b64": a base64-encoded PNG or JPEG image')
                item, field = item[key], f"{field}.{key}"
            if isinstance(item, list):
                images.append(self._pixel_list(item, field))
            else:
                images.append(decode_image(item, self.shape, field))
        return self._batch(np.stack(images))

    def _pixel_list(self, item: list, field: str) -> np.ndarray:
        try:
            array = np.asarray(item)
        except ValueError:
            raise InputError(f"{field} is a ragged list, not an [H][W] image") from None
        if array.dtype.kind not in "iu" or array.size == 0 or array.min() < 0 or array.max() > 255:
            raise InputError(f"{field} must hold integer pixels 0..255")
        return shaped_pixels(array.astype(np.uint8)[np.newaxis], self.shape, field)[0]

    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        tensor = named_input(tensors, IMAGE_COLUMN)
        field = f"inputs[{tensor.name}]"
        array = tensor.array
        if tensor.datatype == "UINT8":
            if array.ndim not in (3, 4):
                raise InputError(
                    f"{field}.shape must be [n, H, W] or [n, H, W, C], got {list(array.shape)}"
                )
            self.check_count(array.shape[0], field, "image")
            return self._batch(shaped_pixels(array.astype(np.uint8), self.shape, field))
        if tensor.datatype == "BYTES":
            values = column_values(tensor, field)
            self.check_count(len(values), field, "image")
            return self._batch(as_images(values, self.shape, field))
        raise InputError(
            f'{field}.datatype must be "UINT8" (pixels) or "BYTES" (PNG/JPEG), '
            f'got "{tensor.datatype}"'
        )

    def predict(self, batch: Batch) -> Answer:
        probabilities = self.model.predict_proba(batch.model_input)
        return classification_answer(self.model.classes_, probabilities, self.limits.low_confidence)

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        images = self.images_of(summaries)
        return [
            {
                "name": IMAGE_COLUMN,
                "datatype": "UINT8",
                "shape": list(images.shape),
                "data": images.reshape(-1).tolist(),
            }
        ]

    def images_of(self, summaries: Sequence[Any]) -> np.ndarray:
        """uint8 [n, H, W, C] of stored summaries ``{"image": base64 PNG}``."""
        values = [s.get(IMAGE_COLUMN) if isinstance(s, dict) else s for s in summaries]
        return as_images(values, self.shape, "summaries")
