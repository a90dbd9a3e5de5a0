"""Wire format: the last ``window`` closes in, the next close and a drift warning out.

v1 ``{"instances": [{"last_prices": [60 floats, oldest first]}]}``; v2 one FP32 (or FP64)
tensor ``last_prices`` of shape ``[n, 60]``. Exactly ``window`` finite positive values per
instance, or a 400 naming the count. Each answer: ``predicted_price``, ``last_price``,
``drift_warning``, ``drift_details`` (JSON text, the same in v1 and v2: the window's
statistics against the training windows' range shipped with the version) and
``served_model`` (``persistence`` when nothing beat it).

A window may name what it forecasts, so that the realised close resolves it when it is
observed (``POST /v1/feedback/observations``): v1 ``"series"`` and ``"date"`` (the target
day, ISO) beside ``last_prices``; v2 optional BYTES inputs ``series`` and ``date`` of shape
``[n]``. Both or neither; they are stored with the window's summary.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from driftloop.blueprints.codec import Answer, Batch, Codec, InputError, InputTensor, TensorSpec
from driftloop.blueprints.forecast.feedback import DATE, SERIES

INPUT = "last_prices"
NUMERIC = {"FP16", "FP32", "FP64", "INT32", "INT64"}
MAX_SERIES_CHARS = 128  # the store's observation key column


def series_name(value: Any, field: str) -> str:
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field} must be a non-empty series name")
    if len(value) > MAX_SERIES_CHARS or "\x00" in value:
        raise InputError(f"{field} must be at most {MAX_SERIES_CHARS} characters, without NUL")
    return value


def iso_date(value: Any, field: str) -> str:
    """``value`` as ``YYYY-MM-DD``; an InputError naming ``field`` otherwise."""
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", errors="replace")
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise InputError(f"{field} must be an ISO date YYYY-MM-DD, got {value!r}") from None


def target(series: Any, date: Any, field: str) -> dict[str, str]:
    """The optional (series, date) a window forecasts: both or neither."""
    if series is None and date is None:
        return {}
    if series is None or date is None:
        missing = SERIES if series is None else DATE
        raise InputError(f"{field}.{missing} is missing: send {SERIES} and {DATE} together")
    return {SERIES: series_name(series, f"{field}.{SERIES}"),
            DATE: iso_date(date, f"{field}.{DATE}")}  # fmt: skip


class PriceCodec(Codec):
    def __init__(self, model: Any, limits, window: int) -> None:
        super().__init__(model, limits)
        self.window = window
        self.inputs = (TensorSpec(INPUT, "FP32", (-1, window)),)
        self.outputs = (
            TensorSpec("predicted_price", "FP64", (-1,)),
            TensorSpec("last_price", "FP64", (-1,)),
            TensorSpec("drift_warning", "BOOL", (-1,)),
            TensorSpec("drift_details", "BYTES", (-1,)),
            TensorSpec("served_model", "BYTES", (-1,)),
        )

    def _prices(self, values: Any, field: str) -> list[float]:
        if not isinstance(values, list | tuple | np.ndarray):
            raise InputError(f"{field} must be a list of the last {self.window} closes")
        values = list(np.asarray(values, dtype=object).reshape(-1))
        if len(values) != self.window:
            raise InputError(
                f"{field} has {len(values)} values; the model needs exactly {self.window} "
                "closes, oldest first"
            )
        prices = []
        for index, value in enumerate(values):
            value = value.item() if isinstance(value, np.generic) else value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{field}[{index}] must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"{field}[{index}] must be a finite positive price, got {value}")
            # FP32 as declared: v1 rounds like the v2 tensor, so both protocols answer alike
            prices.append(float(np.float32(value)))
        return prices

    def _batch(self, rows: list[list[float]], targets: list[dict[str, str]]) -> Batch:
        return Batch(
            model_input=np.array(rows, dtype=float).reshape(len(rows), self.window),
            summaries=[{INPUT: row, **named} for row, named in zip(rows, targets, strict=True)],
        )

    def decode_v1(self, instances: list[Any]) -> Batch:
        self.check_count(len(instances), "instances")
        rows, targets = [], []
        for index, item in enumerate(instances):
            field = f"instances[{index}]"
            if not isinstance(item, dict) or INPUT not in item:
                raise InputError(f'{field} must be an object {{"{INPUT}": [{self.window} floats]}}')
            unknown = sorted(set(item) - {INPUT, SERIES, DATE})
            if unknown:
                raise InputError(
                    f"{field} has unknown field(s) {unknown}; send {INPUT} "
                    f"(and optionally {SERIES} + {DATE})"
                )
            rows.append(self._prices(item[INPUT], f"{field}.{INPUT}"))
            targets.append(target(item.get(SERIES), item.get(DATE), field))
        return self._batch(rows, targets)

    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        if INPUT not in tensors:
            raise InputError(f"inputs: missing {INPUT!r} (FP32 [n, {self.window}])")
        tensor = tensors[INPUT]
        if tensor.datatype not in NUMERIC:
            raise InputError(f'inputs[{INPUT}].datatype must be numeric ("FP32")')
        matrix = tensor.array
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[1] != self.window:
            raise InputError(
                f"inputs[{INPUT}].shape is {list(tensor.array.shape)}; the model needs "
                f"[n, {self.window}]: exactly {self.window} closes per row"
            )
        self.check_count(len(matrix), "inputs")
        rows = [self._prices(row.tolist(), f"{INPUT}[{i}]") for i, row in enumerate(matrix)]
        named = {}
        for name in (SERIES, DATE):
            if name in tensors:
                values = tensors[name].array.reshape(-1).tolist()
                if len(values) != len(rows):
                    raise InputError(
                        f"inputs[{name}] has {len(values)} items for {len(rows)} windows"
                    )
                named[name] = values
        targets = [
            target(named.get(SERIES, [None] * len(rows))[i],
                   named.get(DATE, [None] * len(rows))[i], f"inputs[{i}]")
            for i in range(len(rows))
        ]  # fmt: skip
        return self._batch(rows, targets)

    def predict(self, batch: Batch) -> Answer:
        windows = batch.model_input
        predicted = np.asarray(self.model.predict(windows), dtype=np.float64).reshape(-1)
        last = windows[:, -1].astype(np.float64)
        checks = self.model.reference_.check(windows)
        warnings = np.array([w for w, _ in checks], dtype=bool)
        details = [json.dumps(d, sort_keys=True) for _, d in checks]
        served = getattr(self.model, "kind", type(self.model).__name__)
        return Answer(
            instances=[
                {
                    "predicted_price": float(p),
                    "last_price": float(lp),
                    "drift_warning": bool(w),
                    "drift_details": d,
                    "served_model": served,
                }  # fmt: skip
                for p, lp, w, d in zip(predicted, last, warnings, details, strict=True)
            ],
            tensors=[
                ("predicted_price", "FP64", predicted),
                ("last_price", "FP64", last),
                ("drift_warning", "BOOL", warnings),
                ("drift_details", "BYTES", np.array(details, dtype=object)),
                ("served_model", "BYTES", np.array([served] * len(predicted), dtype=object)),
            ],
            labels=[None] * len(predicted),
            confidences=[None] * len(predicted),
            parameters={"served_model": served},
        )

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        rows = [list(map(float, s[INPUT])) for s in summaries]
        inputs = [{"name": INPUT, "datatype": "FP32", "shape": [len(rows), self.window],
                   "data": rows}]  # fmt: skip
        if summaries and all(SERIES in s and DATE in s for s in summaries):
            for name in (SERIES, DATE):
                inputs.append({"name": name, "datatype": "BYTES", "shape": [len(rows)],
                               "data": [s[name] for s in summaries]})  # fmt: skip
        return inputs
