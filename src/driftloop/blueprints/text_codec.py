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
    column_values,
    named_input,
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
        tensor = named_input(tensors, TEXT_INPUT)
        field = f"inputs[{tensor.name}]"
        if tensor.datatype != "BYTES":
            raise InputError(f'{field}.datatype must be "BYTES", got "{tensor.datatype}"')
        return self._texts(column_values(tensor, field), field)

    def predict(self, batch: Batch) -> Answer:
        probabilities = self.model.predict_proba(list(batch.model_input))
        return classification_answer(self.model.classes_, probabilities, self.limits.low_confidence)

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        texts = [str(text) for text in summaries]
        return [{"name": TEXT_INPUT, "datatype": "BYTES", "shape": [len(texts)], "data": texts}]
