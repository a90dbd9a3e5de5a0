"""Texts on the wire: one BYTES input ``text``; label, probabilities, low-confidence out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from driftloop.blueprints.codec import (
    CLASSIFICATION_OUTPUTS,
    Answer,
    Batch,
    Codec,
    InputError,
    InputTensor,
    TensorSpec,
    classification_answer,
    text_of,
)

TEXT_INPUT = "text"


class TextCodec(Codec):
    inputs = (TensorSpec(TEXT_INPUT, "BYTES", (-1,)),)
    outputs = CLASSIFICATION_OUTPUTS

    def _texts(self, values: Sequence[Any], field: str) -> Batch:
        self.check_count(len(values), field, "text")
        texts = [
            text_of(value, f"{field}[{i}]", self.limits.max_chars) for i, value in enumerate(values)
        ]
        return Batch(model_input=texts, summaries=texts)

    def decode_v1(self, instances: list[Any]) -> Batch:
        values = [item.get(TEXT_INPUT) if isinstance(item, dict) else item for item in instances]
        return self._texts(values, "instances")

    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        if TEXT_INPUT in tensors:
            tensor = tensors[TEXT_INPUT]
        elif len(tensors) == 1:
            tensor = next(iter(tensors.values()))
        else:
            raise InputError(f'no input named "{TEXT_INPUT}" among {sorted(tensors)}')
        field = f"inputs[{tensor.name}]"
        if tensor.datatype != "BYTES":
            raise InputError(f'{field}.datatype must be "BYTES", got "{tensor.datatype}"')
        shape = tensor.array.shape
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InputError(f"{field}.shape must be [n] or [n, 1], got {list(shape)}")
        return self._texts(tensor.array.reshape(-1).tolist(), field)

    def predict(self, batch: Batch) -> Answer:
        probabilities = self.model.predict_proba(list(batch.model_input))
        return classification_answer(self.model.classes_, probabilities, self.limits.low_confidence)

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        texts = [str(text) for text in summaries]
        return [{"name": TEXT_INPUT, "datatype": "BYTES", "shape": [len(texts)], "data": texts}]
