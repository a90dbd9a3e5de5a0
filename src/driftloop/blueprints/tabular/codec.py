"""Table rows on the wire.

v1: ``{"instances": [{column: value, ...}, ...]}``. v2 (REST and gRPC): one
named input per feature column -- FP32/FP64/INT* for numeric columns, BYTES
for categorical and date columns, BOOL (or BYTES "true"/"false") for boolean
ones -- each of shape [n] or [n, 1]; or, for an all-numeric table, a single
FP32/FP64 [n, d] tensor with the columns in the schema's order. Missing values
are JSON null (or NaN in a float tensor) and are imputed by the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.codec import (
    CLASSIFICATION_OUTPUTS,
    NUMBER_OUTPUTS,
    Answer,
    Batch,
    Codec,
    InputError,
    InputTensor,
    Limits,
    TensorSpec,
    classification_answer,
    column_values,
    number_answer,
)
from driftloop.blueprints.tabular.schema import TableSchema

NUMERIC_DATATYPES = {
    *(f"FP{bits}" for bits in (16, 32, 64)),
    *(f"{kind}{bits}" for kind in ("INT", "UINT") for bits in (8, 16, 32, 64)),
}
DATATYPE_OF_KIND = {
    "numeric": "FP32",
    "categorical": "BYTES",
    "datetime": "BYTES",
    "boolean": "BOOL",
}
ACCEPTED_DATATYPES = {
    "numeric": NUMERIC_DATATYPES,
    "categorical": {"BYTES"},
    "datetime": {"BYTES"},
    "boolean": {"BOOL", "BYTES"},
}


def table_schema(model: Any) -> TableSchema:
    """The schema step a tabular model starts with."""
    first = model.steps[0][1] if hasattr(model, "steps") else None
    if not isinstance(first, TableSchema):
        raise TypeError("a tabular model is a Pipeline whose first step is a fitted TableSchema")
    return first


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def check_value(value: Any, kind: str, field: str, max_chars: int | None = None) -> Any:
    """One cell, as the model's schema wants it; JSON-safe (None for missing)."""
    if isinstance(value, bytes | bytearray | np.bytes_):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{field} is not valid UTF-8: {exc.reason}") from exc
    if max_chars is not None and isinstance(value, str) and len(value) > max_chars:
        raise InputError(f"{field} has {len(value)} characters; at most {max_chars}")
    if isinstance(value, np.generic):
        value = value.item()
    if _is_missing(value):
        return None
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{field} must be a number or null, got {value!r}")
        if math.isinf(value):
            raise InputError(f"{field} must be a finite number, got {value!r}")
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise InputError(f"{field} must be true, false or null, got {value!r}")
    if kind == "datetime":
        if isinstance(value, datetime | date):
            return value.isoformat()
        if not isinstance(value, str) or pd.isna(pd.to_datetime(value, errors="coerce")):
            raise InputError(f"{field} must be a date or time as text, got {value!r}")
        return value
    if isinstance(value, dict | list):
        raise InputError(f"{field} must be a single value, got {type(value).__name__}")
    return value if isinstance(value, str) else str(value)


class TableCodec(Codec):
    def __init__(self, model: Any, limits: Limits, *, classifier: bool) -> None:
        super().__init__(model, limits)
        self.schema = table_schema(model)
        self.kinds: dict[str, str] = dict(self.schema.kinds_)
        self.classifier = classifier
        self.inputs = tuple(
            TensorSpec(column, DATATYPE_OF_KIND[kind], (-1,)) for column, kind in self.kinds.items()
        )
        self.outputs = CLASSIFICATION_OUTPUTS if classifier else NUMBER_OUTPUTS
        self.all_numeric = all(kind == "numeric" for kind in self.kinds.values())

    # --- decoding ------------------------------------------------------------------
    def _batch(self, rows: list[dict]) -> Batch:
        frame = pd.DataFrame(rows, columns=list(self.kinds)).astype(object)
        return Batch(model_input=frame.where(frame.notna(), np.nan), summaries=rows)

    def _check_columns(self, given: Sequence[str], field: str) -> None:
        unknown = [c for c in given if c not in self.kinds]
        if unknown:
            raise InputError(
                f"{field}: unknown column(s) {', '.join(map(repr, unknown))}; "
                f"the model takes {', '.join(self.kinds)}"
            )
        missing = [c for c in self.kinds if c not in given]
        if missing:
            raise InputError(f"{field}: missing column(s) {', '.join(map(repr, missing))}")

    def decode_v1(self, instances: list[Any]) -> Batch:
        self.check_count(len(instances), "instances", "row")
        rows = []
        for index, item in enumerate(instances):
            field = f"instances[{index}]"
            if not isinstance(item, dict):
                raise InputError(f"{field} must be an object of column: value")
            self._check_columns(list(item), field)
            rows.append(
                {
                    column: check_value(
                        item[column], kind, f"{field}.{column}", self.limits.max_chars
                    )
                    for column, kind in self.kinds.items()
                }
            )
        return self._batch(rows)

    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        if len(tensors) == 1 and self.all_numeric:
            (tensor,) = tensors.values()
            if tensor.name not in self.kinds or tensor.array.ndim == 2 and len(self.kinds) > 1:
                return self._decode_matrix(tensor)
        self._check_columns(list(tensors), "inputs")
        columns: dict[str, list] = {}
        count = None
        for column, kind in self.kinds.items():
            tensor = tensors[column]
            field = f"inputs[{column}]"
            if tensor.datatype not in ACCEPTED_DATATYPES[kind]:
                raise InputError(
                    f"{field}.datatype must be one of {sorted(ACCEPTED_DATATYPES[kind])} for a "
                    f'{kind} column, got "{tensor.datatype}"'
                )
            values = column_values(tensor, field)
            if count is not None and len(values) != count:
                raise InputError(f"{field} has {len(values)} rows; other inputs have {count}")
            count = len(values)
            columns[column] = [
                check_value(v, kind, f"{field}[{i}]", self.limits.max_chars)
                for i, v in enumerate(values)
            ]
        self.check_count(count or 0, "inputs", "row")
        return self._batch(
            [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        )

    def _decode_matrix(self, tensor: InputTensor) -> Batch:
        field = f"inputs[{tensor.name}]"
        if tensor.datatype not in NUMERIC_DATATYPES:
            raise InputError(
                f'{field}.datatype must be numeric (e.g. "FP32"), got "{tensor.datatype}"'
            )
        matrix = tensor.array
        if matrix.ndim == 1 and len(self.kinds) == 1:
            matrix = matrix.reshape(-1, 1)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.kinds):
            raise InputError(
                f"{field}.shape must be [n, {len(self.kinds)}] (columns {', '.join(self.kinds)}), "
                f"got {list(tensor.array.shape)}"
            )
        self.check_count(matrix.shape[0], field, "row")
        rows = [
            {
                column: check_value(value, "numeric", f"{field}[{i}][{j}]")
                for j, (column, value) in enumerate(zip(self.kinds, row.tolist(), strict=True))
            }
            for i, row in enumerate(matrix.astype(np.float64))
        ]
        return self._batch(rows)

    # --- prediction and encoding ---------------------------------------------------
    def predict(self, batch: Batch) -> Answer:
        if self.classifier:
            probabilities = self.model.predict_proba(batch.model_input)
            return classification_answer(
                self.model.classes_, probabilities, self.limits.low_confidence
            )
        return number_answer(self.model.predict(batch.model_input))

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        inputs = []
        for column, kind in self.kinds.items():
            values = [row.get(column) for row in summaries]
            datatype = "FP32" if kind == "numeric" else "BYTES"
            # missing cells travel as JSON null, which decode_v1/v2 read back as missing
            if kind == "numeric":
                values = [None if v is None else float(v) for v in values]
            else:
                values = [None if v is None else str(v) for v in values]
            inputs.append(
                {"name": column, "datatype": datatype, "shape": [len(values)], "data": values}
            )
        return inputs
