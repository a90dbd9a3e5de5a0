"""Wire format of a served model: OIP tensors in, predictions out, per-instance summaries.

A codec wraps one fitted model. The predictor decodes a v1 body or v2
tensors (already parsed by ``serving.wire``) into a :class:`Batch`, asks
the codec to predict, and encodes the :class:`Answer`; the monitor decodes
logged bodies with the same codec. Problems raise :class:`InputError` naming
the field; the predictor turns it into HTTP 400 / gRPC INVALID_ARGUMENT.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class InputError(ValueError):
    """A request that does not fit the model's inputs; the message names the field."""


@dataclass(frozen=True)
class Limits:
    max_instances: int = 256
    max_chars: int = 10_000
    low_confidence: float = 0.6


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_metadata(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class InputTensor:
    """One decoded v2 input: its name, declared datatype and data shaped as declared."""

    name: str
    datatype: str
    array: np.ndarray


@dataclass
class Batch:
    """Decoded instances: what the model takes, and a JSON summary of each."""

    model_input: Any
    summaries: list[Any]

    def __len__(self) -> int:
        return len(self.summaries)


@dataclass
class Answer:
    """Predictions for a batch.

    ``instances`` are the v1 predictions and the stored outputs (JSON, one per
    instance); ``tensors`` the v2 outputs as (name, datatype, array);
    ``labels``/``confidences`` what the store indexes (None where not a class).
    """

    instances: list[dict]
    tensors: list[tuple[str, str, np.ndarray]]
    labels: list[str | None]
    confidences: list[float | None]
    parameters: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.instances)


class Codec(ABC):
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    def __init__(self, model: Any, limits: Limits) -> None:
        self.model = model
        self.limits = limits

    @abstractmethod
    def decode_v1(self, instances: list[Any]) -> Batch:
        """``{"instances": [...]}``'s list."""

    @abstractmethod
    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        """Named input arrays of a v2 request (JSON, binary extension or gRPC alike)."""

    @abstractmethod
    def predict(self, batch: Batch) -> Answer: ...

    @abstractmethod
    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        """Plain-JSON v2 ``inputs`` for stored summaries (clients, logging, replays)."""

    # --- adaptive batching (serving.batching): several requests, one model call -------
    def join(self, batches: Sequence[Batch]) -> Batch:
        """Several requests' batches as one, rows in order (the model is called once)."""
        return Batch(
            model_input=join_rows([batch.model_input for batch in batches]),
            summaries=[summary for batch in batches for summary in batch.summaries],
        )

    def split(self, answer: Answer, sizes: Sequence[int]) -> list[Answer]:
        """The answer of a joined batch cut back into one answer per request (``sizes`` rows
        each), each as the model would have answered that request alone. A codec whose
        outputs depend on the whole batch (a padded width, say) overrides this."""
        return split_rows(answer, sizes)

    def check_count(self, n: int, field: str, what: str = "instance") -> None:
        if n == 0:
            raise InputError(f"{field} is empty: send at least one {what}")
        if n > self.limits.max_instances:
            raise InputError(
                f"{field} has {n} items; at most {self.limits.max_instances} per request"
            )


def named_input(tensors: Mapping[str, InputTensor], name: str) -> InputTensor:
    """The v2 input called ``name``, or the only input whatever its name."""
    if name in tensors:
        return tensors[name]
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    raise InputError(f'no input named "{name}" among {sorted(tensors)}')


def column_values(tensor: InputTensor, field: str) -> list[Any]:
    """The items of a one-per-instance tensor (shape ``[n]`` or ``[n, 1]``) as a list."""
    shape = tensor.array.shape
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise InputError(f"{field}.shape must be [n] or [n, 1], got {list(shape)}")
    return tensor.array.reshape(-1).tolist()


def join_rows(inputs: Sequence[Any]) -> Any:
    """Model inputs stacked row-wise: lists, arrays (first axis) or pandas frames."""
    first = inputs[0]
    if len(inputs) == 1:
        return first
    if isinstance(first, list):
        return [row for part in inputs for row in part]
    if isinstance(first, np.ndarray):
        return np.concatenate(inputs, axis=0)
    import pandas as pd

    if isinstance(first, pd.DataFrame):
        return pd.concat(inputs, ignore_index=True)
    raise TypeError(f"cannot join model inputs of type {type(first).__name__}: override join")


def split_rows(answer: Answer, sizes: Sequence[int]) -> list[Answer]:
    """``answer`` cut into consecutive parts of ``sizes`` rows; parameters go to every part."""
    if sum(sizes) != len(answer):
        raise ValueError(f"the answer has {len(answer)} rows, the requests {sum(sizes)}")
    parts, start = [], 0
    for size in sizes:
        end = start + size
        parts.append(
            Answer(
                instances=answer.instances[start:end],
                tensors=[(name, dtype, array[start:end]) for name, dtype, array in answer.tensors],
                labels=answer.labels[start:end],
                confidences=answer.confidences[start:end],
                parameters=dict(answer.parameters),
            )
        )
        start = end
    return parts


def classification_answer(
    classes: Sequence[str], probabilities: np.ndarray, low_confidence: float
) -> Answer:
    """Label, probabilities and a low-confidence flag per instance."""
    classes = [str(c) for c in classes]
    probabilities = np.asarray(probabilities, dtype=np.float32)
    top = probabilities.argmax(axis=1)
    confidences = probabilities.max(axis=1)
    labels = [classes[i] for i in top]
    low = [bool(c < low_confidence) for c in confidences]
    instances = [
        {
            "label": label,
            "probabilities": {cls: float(p) for cls, p in zip(classes, row, strict=True)},
            "low_confidence": flag,
        }
        for label, row, flag in zip(labels, probabilities, low, strict=True)
    ]
    return Answer(
        instances=instances,
        tensors=[
            ("label", "BYTES", np.array(labels, dtype=object)),
            ("probabilities", "FP32", probabilities),
            ("low_confidence", "BOOL", np.array(low, dtype=bool)),
        ],
        labels=labels,
        confidences=confidences.astype(float).tolist(),
        parameters={"labels": classes},
    )


CLASSIFICATION_OUTPUTS = (
    TensorSpec("label", "BYTES", (-1,)),
    TensorSpec("probabilities", "FP32", (-1, -1)),
    TensorSpec("low_confidence", "BOOL", (-1,)),
)


def number_answer(values: Sequence[float]) -> Answer:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    return Answer(
        instances=[{"prediction": float(v)} for v in values],
        tensors=[("prediction", "FP64", values)],
        labels=[None] * len(values),
        confidences=[None] * len(values),
    )


NUMBER_OUTPUTS = (TensorSpec("prediction", "FP64", (-1,)),)


def text_of(value: Any, field: str, max_chars: int) -> str:
    """One text instance, checked: UTF-8, not blank, not too long."""
    if isinstance(value, bytes | bytearray | np.bytes_):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{field} is not valid UTF-8: {exc.reason}") from exc
    if not isinstance(value, str):
        raise InputError(f"{field} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InputError(f"{field} is an empty text")
    if len(value) > max_chars:
        raise InputError(f"{field} has {len(value)} characters; at most {max_chars}")
    return value
