"""Time-series forecasting: the next ``horizon`` values of a table's ``target`` column,
indexed by its ``time_column``.

Training rows are *windows* of the series: one per forecast origin, the time of
its last observed value (``time_column``), the ``history`` values up to it
(``lag_<history>`` .. ``lag_1``) and the ``horizon`` values after it
(``ahead_1`` .. ``ahead_<horizon>``, the ground truth; ``target_column`` names
the first). Windows are split like any rows.

A request is the recent history, what the forecast rests on: per instance the
time of the last observation and at least ``history`` values, oldest first::

    {"instances": [{"month": "1939-06-01", "temperature": [40.1, ..., 57.3]}]}

and the answer the next ``horizon`` values, their times, and the MASE scale of
that history (its in-sample seasonal-naive MAE, what live MASE divides by)::

    {"predictions": [{"forecast": [...], "times": [...], "scale": 2.1}]}

Candidates: seasonal naive and drift baselines, and gradient boosting (LightGBM) on
lag and calendar features; ranked by MASE (lower is better; the seasonal naive forecast
scores about 1 out of sample by construction of the scale).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.base import Metric, ParamRange
from driftloop.blueprints.codec import (
    Answer,
    Batch,
    Codec,
    InputError,
    InputTensor,
    Limits,
    TensorSpec,
)
from driftloop.blueprints.drift import DriftFeaturizer, SuggestedDetector
from driftloop.blueprints.feedback import Feedback, FeedbackError
from driftloop.blueprints.scoring import mase, rmse
from driftloop.blueprints.tabular.estimators import (
    DriftForecaster,
    LagForecaster,
    SeasonalNaiveForecaster,
    naive_scale,
    seasonal_naive,
)
from driftloop.blueprints.tabular.tasks.base import ID_COLUMN, TaskStrategy
from driftloop.datasets.errors import DatasetValidationError

# season length by the frequency's base unit (pandas offset names)
_SEASONS = {"MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4, "W": 52, "D": 7, "B": 5}
_SEASONS |= {"h": 24, "H": 24, "min": 60, "T": 60}
NUMERIC_DATATYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"}


def lag_columns(history: int) -> list[str]:
    return [f"lag_{k}" for k in range(history, 0, -1)]


def ahead_columns(horizon: int) -> list[str]:
    return [f"ahead_{k}" for k in range(1, horizon + 1)]


def season_of(freq: str) -> int:
    base = freq.split("-")[0].lstrip("0123456789")
    return _SEASONS.get(base, 1)


def time_text(moments: pd.DatetimeIndex) -> list[str]:
    """ISO text: dates alone when every time is midnight."""
    if (moments == moments.normalize()).all():
        return [m.strftime("%Y-%m-%d") for m in moments]
    return [m.isoformat() for m in moments]


def parse_times(values: pd.Series, option: str = "--time-column") -> pd.DatetimeIndex:
    """A column of dates or times; one line naming ``option``, a count and an example if not."""
    name = values.name
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values)
    elif pd.api.types.is_numeric_dtype(values):
        example = values.dropna().iloc[0] if values.notna().any() else None
        raise DatasetValidationError(
            f"{option} {name!r}: holds numbers (e.g. {example!r}), not dates or times; "
            "give them as text, e.g. '1949-01-01' or '2024-03-01 12:00'"
        )
    else:
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        except (ValueError, TypeError):  # offsets that differ between rows
            parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    bad = parsed.isna() & values.notna()
    empty = int(values.isna().sum())
    if bad.any() or empty:
        example = values[bad].iloc[0] if bad.any() else None
        what = (
            f"{int(bad.sum())} of {len(values)} values do not parse as dates or times "
            f"(e.g. {example!r})"
            if bad.any()
            else f"{empty} of {len(values)} rows have no time"
        )
        raise DatasetValidationError(
            f"{option} {name!r}: {what}; use dates or times such as '2024-01-31' "
            "or '2024-01-31 13:00'"
        )
    return pd.DatetimeIndex(parsed)


def check_order(times: pd.DatetimeIndex, name: str) -> None:
    repeated = times[times.duplicated()]
    if len(repeated):
        raise DatasetValidationError(
            f"--time-column {name!r}: {len(repeated)} time(s) repeat (e.g. "
            f"{time_text(repeated[:1])[0]}); a series needs one row per time"
        )
    steps = np.diff(times.asi8)
    if (steps < 0).any():
        row = int(np.argmax(steps < 0)) + 1
        later, earlier = time_text(times[row - 1 : row + 1])
        raise DatasetValidationError(
            f"--time-column {name!r}: rows are not in time order (row {row + 1}, {earlier}, "
            f"comes after {later}); sort the table by time"
        )


class ForecastCodec(Codec):
    """History in (a time and a list of values per instance), the next values out."""

    def __init__(self, model: Any, limits: Limits, task: TimeSeriesTask) -> None:
        super().__init__(model, limits)
        self.task = task
        self.time_column, self.value_column = task.time_column, task.value_column
        self.inputs = (
            TensorSpec(self.time_column, "BYTES", (-1,)),
            TensorSpec(self.value_column, "FP64", (-1, -1)),
        )
        self.outputs = (
            TensorSpec("forecast", "FP64", (-1, task.horizon)),
            TensorSpec("times", "BYTES", (-1, task.horizon)),
            TensorSpec("scale", "FP64", (-1,)),
        )

    def _instance(self, moment: Any, values: Any, field: str) -> dict:
        if isinstance(moment, bytes | bytearray | np.bytes_):
            moment = bytes(moment).decode("utf-8", errors="replace")
        if isinstance(moment, datetime | date):
            moment = moment.isoformat()
        if not isinstance(moment, str) or pd.isna(pd.to_datetime(moment, errors="coerce")):
            raise InputError(
                f"{field}.{self.time_column} must be the time of the last value as text "
                f"(e.g. '2024-01-31'), got {moment!r}"
            )
        if not isinstance(values, list | tuple | np.ndarray):
            raise InputError(
                f"{field}.{self.value_column} must be a list of the last "
                f"{self.task.history} or more values, oldest first"
            )
        values = list(np.asarray(values, dtype=object).reshape(-1))
        if len(values) < self.task.history:
            raise InputError(
                f"{field}.{self.value_column} has {len(values)} values; the model needs the "
                f"last {self.task.history} (or more), oldest first"
            )
        numbers = []
        for index, value in enumerate(values[-self.task.history :]):
            value = value.item() if isinstance(value, np.generic) else value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{field}.{self.value_column}[{index}] must be a number")
            if not math.isfinite(value):
                raise InputError(f"{field}.{self.value_column}[{index}] must be finite")
            numbers.append(float(value))
        return {self.time_column: moment, self.value_column: numbers}

    def _batch(self, rows: list[dict]) -> Batch:
        frame = pd.DataFrame(
            {
                self.time_column: [r[self.time_column] for r in rows],
                self.value_column: [r[self.value_column] for r in rows],
            }
        )
        return Batch(model_input=frame, summaries=rows)

    def decode_v1(self, instances: list[Any]) -> Batch:
        self.check_count(len(instances), "instances")
        rows = []
        for index, item in enumerate(instances):
            field = f"instances[{index}]"
            if not isinstance(item, dict):
                raise InputError(f"{field} must be an object of {self._shape()}")
            missing = [c for c in (self.time_column, self.value_column) if c not in item]
            if missing:
                raise InputError(f"{field}: missing {', '.join(map(repr, missing))}")
            rows.append(self._instance(item[self.time_column], item[self.value_column], field))
        return self._batch(rows)

    def _shape(self) -> str:
        return f"{self.time_column!r} (time of the last value) and {self.value_column!r} (values)"

    def decode_v2(self, tensors: Mapping[str, InputTensor]) -> Batch:
        missing = [c for c in (self.time_column, self.value_column) if c not in tensors]
        if missing:
            raise InputError(f"inputs: missing {', '.join(map(repr, missing))}; {self._shape()}")
        times, values = tensors[self.time_column], tensors[self.value_column]
        if times.datatype != "BYTES":
            raise InputError(f'inputs[{self.time_column}].datatype must be "BYTES"')
        if values.datatype not in NUMERIC_DATATYPES:
            raise InputError(f'inputs[{self.value_column}].datatype must be numeric ("FP64")')
        moments = times.array.reshape(-1)
        matrix = values.array
        if matrix.ndim == 1 and len(moments) == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[0] != len(moments):
            raise InputError(
                f"inputs[{self.value_column}].shape must be [n, k] with one row per time "
                f"({len(moments)}), got {list(values.array.shape)}"
            )
        self.check_count(len(moments), "inputs")
        rows = [
            self._instance(m, row.tolist(), f"inputs[{i}]")
            for i, (m, row) in enumerate(zip(moments.tolist(), matrix, strict=True))
        ]
        return self._batch(rows)

    def predict(self, batch: Batch) -> Answer:
        frame = batch.model_input
        forecasts = np.asarray(self.model.predict(frame), dtype=np.float64)
        history = np.array(
            [np.asarray(v, dtype=float)[-self.task.history :] for v in frame[self.value_column]]
        ).reshape(len(frame), -1)
        scales = naive_scale(history, self.task.season)
        times = [self.task.future_times(t) for t in frame[self.time_column]]
        return Answer(
            instances=[
                {"forecast": [float(v) for v in f], "times": ts, "scale": float(s)}
                for f, ts, s in zip(forecasts, times, scales, strict=True)
            ],
            tensors=[
                ("forecast", "FP64", forecasts),
                ("times", "BYTES", np.array(times, dtype=object).reshape(len(frame), -1)),
                ("scale", "FP64", scales.astype(np.float64)),
            ],
            labels=[None] * len(frame),
            confidences=[None] * len(frame),
        )

    def v2_inputs(self, summaries: Sequence[Any]) -> list[dict]:
        values = [list(map(float, s[self.value_column])) for s in summaries]
        return [
            {
                "name": self.time_column,
                "datatype": "BYTES",
                "shape": [len(summaries)],
                "data": [str(s[self.time_column]) for s in summaries],
            },
            {
                "name": self.value_column,
                "datatype": "FP64",
                "shape": [len(values), len(values[0]) if values else 0],
                "data": values,
            },
        ]


class ForecastFeaturizer(DriftFeaturizer):
    """``history``: each window's level (last-season mean), last value and spread;
    ``prediction``: the mean of its forecast. Both continuous (KS)."""

    groups = {"history": "continuous", "prediction": "continuous"}

    def __init__(self, task: TimeSeriesTask) -> None:
        self.history, self.season = task.history, task.season
        self.value_column = task.value_column

    def knows(self, output: dict) -> bool:
        forecast = output.get("forecast") if isinstance(output, dict) else None
        return isinstance(forecast, list) and all(isinstance(v, int | float) for v in forecast)

    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        windows = np.array(
            [np.asarray(v, dtype=float)[-self.history :] for v in model_input[self.value_column]]
        ).reshape(len(model_input), -1)
        level = windows[:, -max(1, min(self.season, self.history)) :].mean(axis=1)
        history = np.column_stack([level, windows[:, -1], windows.std(axis=1)])
        prediction = np.array([np.mean(o["forecast"]) for o in outputs]).reshape(-1, 1)
        return {"history": history.astype(np.float32), "prediction": prediction.astype(np.float32)}

    def default_detectors(self) -> list[SuggestedDetector]:
        return [
            SuggestedDetector("ks-history", "ks", "history", correction="fdr"),
            SuggestedDetector("ks-prediction", "ks", "prediction"),
        ]


class ForecastFeedback(Feedback):
    """The values that came, one per forecast step (null: not known yet); live MASE."""

    kind = "forecast"

    def parse(self, truth: Any, outputs: Sequence[dict]) -> tuple[Any, bool | None]:
        horizon = len(outputs[0].get("forecast", [])) if outputs else None
        per_instance = (
            truth
            if isinstance(truth, list) and len(outputs) > 1 and len(truth) == len(outputs)
            else [truth]
        )
        for item in per_instance:
            values = item if isinstance(item, list) else [item]
            if horizon is not None and len(values) > horizon:
                raise FeedbackError(f"value has {len(values)} numbers; the forecast has {horizon}")
            for v in values:
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                    raise FeedbackError(
                        "value must be the observed values of the forecast steps "
                        f"(numbers, null where not known yet), got {v!r}"
                    )
                if v is not None and not math.isfinite(v):
                    raise FeedbackError("value must hold finite numbers")
        return truth, None

    def live_score(self, outputs: Sequence[dict], truths: Sequence[Any]) -> float:
        forecasts, actuals, scales = [], [], []
        for output, truth in zip(outputs, truths, strict=True):
            forecast = [float(v) for v in output["forecast"]]
            values = truth if isinstance(truth, list) else [truth]
            values = [math.nan if v is None else float(v) for v in values]
            values += [math.nan] * (len(forecast) - len(values))
            forecasts.append(forecast)
            actuals.append(values)
            scales.append(float(output["scale"]))
        return mase(np.array(forecasts), np.array(actuals), scales)


class TimeSeriesTask(TaskStrategy):
    # --- options -------------------------------------------------------------------
    @property
    def value_column(self) -> str:
        if not self.options.get("target"):
            raise ValueError("--target: name the column of the series to forecast")
        return self.options["target"]

    @property
    def time_column(self) -> str:
        if not self.options.get("time_column"):
            raise ValueError("--time-column: name the column of times (the series' index)")
        return self.options["time_column"]

    @property
    def horizon(self) -> int:
        return int(self.options.get("horizon") or max(self.season, 1))

    @property
    def season(self) -> int:
        return int(self.options.get("season", 1))

    @property
    def history(self) -> int:
        return int(self.options.get("history") or max(2 * self.season, 2 * self.horizon, 8))

    @property
    def freq(self) -> str:
        return str(self.options.get("freq", "D"))

    def future_times(self, last: Any) -> list[str]:
        offset = pd.tseries.frequencies.to_offset(self.freq)
        start = pd.Timestamp(pd.to_datetime(last, format="mixed"))
        return time_text(pd.DatetimeIndex([start + k * offset for k in range(1, self.horizon + 1)]))

    def settle(self, frame: pd.DataFrame) -> tuple[dict, str]:
        from driftloop.datasets.tables import no_such_column

        name = self.options.get("time_column")
        if name is None:
            raise DatasetValidationError("--time-column: name the column of times of the series")
        if name not in frame.columns:
            columns = [c for c in frame.columns if c != ID_COLUMN]
            raise DatasetValidationError(no_such_column("--time-column", name, columns))
        if name == self.value_column:
            raise DatasetValidationError(f"--time-column and --target both name {name!r}")
        times = parse_times(frame[name])
        check_order(times, name)
        self._check_values(frame)
        freq = pd.infer_freq(times) if len(times) >= 3 else None
        if freq is None:
            steps = pd.Series(np.diff(times.asi8)).map(pd.Timedelta)
            raise DatasetValidationError(
                f"--time-column {name!r}: the times are not evenly spaced (steps from "
                f"{steps.min()} to {steps.max()}); a series needs one row per period"
            )
        season = season_of(freq)
        settled = {"freq": freq, "season": season}
        horizon = int(self.options.get("horizon") or max(season, 1))
        history = int(self.options.get("history") or max(2 * season, 2 * horizon, 8))
        settled |= {"horizon": horizon, "history": history}
        windows = len(frame) - history - horizon + 1
        if windows < 1:
            raise DatasetValidationError(
                f"--horizon {horizon}: the series has {len(frame)} values; a window needs "
                f"{history} of history and {horizon} ahead"
            )
        note = (
            f"series {self.value_column!r} by {name!r}: frequency {freq}, season {season}, "
            f"{history} values of history -> {horizon} ahead, {windows} windows"
        )
        return settled, note

    def _check_values(self, frame: pd.DataFrame) -> None:
        target = self.value_column
        if target not in frame.columns:
            from driftloop.datasets.tables import no_such_column

            columns = [c for c in frame.columns if c != ID_COLUMN]
            raise DatasetValidationError(no_such_column("--target", target, columns))
        numbers = pd.to_numeric(frame[target], errors="coerce").astype(float)
        bad = ~np.isfinite(numbers)
        if bad.any():
            example = frame[target][bad].iloc[0]
            raise DatasetValidationError(
                f"column {target!r}: {int(bad.sum())} of {len(frame)} rows are not finite "
                f"numbers (e.g. {example!r}); a series to forecast needs a number at every time",
                {target: f"{int(bad.sum())} rows not numeric"},
            )

    # --- data ----------------------------------------------------------------------
    @property
    def target_column(self) -> str:
        return "ahead_1"

    def default_metric(self) -> Metric:
        return Metric("mase", False, floor=None)

    def task_frame(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The series' windows (see the module docstring); ids are the origins' times."""
        times = parse_times(raw[self.time_column])
        check_order(times, self.time_column)
        self._check_values(raw)
        values = pd.to_numeric(raw[self.value_column]).astype(float).to_numpy()
        history, horizon = self.history, self.horizon
        origins = np.arange(history - 1, len(values) - horizon)
        if len(origins) == 0:
            raise DatasetValidationError(
                f"--horizon {horizon}: the series has {len(values)} values; a window needs "
                f"{history} of history and {horizon} ahead"
            )
        text = time_text(times[origins])
        frame = pd.DataFrame({ID_COLUMN: text, self.time_column: text})
        lags = np.stack([values[origins - k] for k in range(history - 1, -1, -1)], axis=1)
        ahead = np.stack([values[origins + k] for k in range(1, horizon + 1)], axis=1)
        frame[lag_columns(history)] = lags
        frame[ahead_columns(horizon)] = ahead
        frame.attrs["ids"] = "ids are the windows' last times"
        return frame

    def feature_columns(self, frame: pd.DataFrame) -> list[str]:
        return [self.time_column, *lag_columns(self.history)]

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        lags = frame[lag_columns(self.history)].to_numpy(dtype=float)
        return pd.DataFrame(
            {
                self.time_column: frame[self.time_column].astype(str).to_numpy(),
                self.value_column: [list(map(float, row)) for row in lags],
            }
        )

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[ahead_columns(self.horizon)].to_numpy(dtype=float)

    def validate(self, frame: pd.DataFrame, what: str) -> dict:
        if frame.empty:
            raise DatasetValidationError(f"{what} has no windows")
        needed = [self.time_column, *lag_columns(self.history), *ahead_columns(self.horizon)]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DatasetValidationError(f"{what} lacks window column(s) {', '.join(missing)}")
        return {"rows": len(frame), "windows": len(frame), "horizon": self.horizon}

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        rows = []
        for summary, truth in zip(inputs, truths, strict=True):
            values = truth if isinstance(truth, list) else [truth]
            values = [np.nan if v is None else float(v) for v in values][: self.horizon]
            values += [np.nan] * (self.horizon - len(values))
            lags = list(map(float, summary[self.value_column]))[-self.history :]
            row = {self.time_column: str(summary[self.time_column])}
            row |= dict(zip(lag_columns(self.history), lags, strict=True))
            row |= dict(zip(ahead_columns(self.horizon), values, strict=True))
            rows.append(row)
        return pd.DataFrame(rows)

    # --- trainer -------------------------------------------------------------------
    def _shape(self) -> dict:
        return {
            "time_column": self.time_column,
            "value_column": self.value_column,
            "history": self.history,
            "horizon": self.horizon,
            "season": self.season,
            "freq": self.freq,
        }

    def candidates(self, seed: int, n_jobs: int) -> dict[str, Any]:
        from lightgbm import LGBMRegressor

        # one thread: a few thousand rows gain nothing from more, and OpenMP threads
        # contending on a busy machine made scikit-learn's histogram booster 50x slower
        booster = LGBMRegressor(
            n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10,
            n_jobs=1, random_state=seed, verbose=-1,
        )  # fmt: skip
        return {
            "seasonal_naive": SeasonalNaiveForecaster(**self._shape()),
            "drift": DriftForecaster(**self._shape()),
            "gradient_boosting": LagForecaster(booster, **self._shape()),
        }

    def tuning_space(self, candidate: str) -> dict[str, ParamRange]:
        if candidate != "gradient_boosting":
            return {}
        return {
            "regressor__learning_rate": ParamRange(0.01, 0.3, log=True),
            "regressor__num_leaves": ParamRange(4, 63, integer=True, log=True),
            "regressor__n_estimators": ParamRange(50, 400, integer=True, log=True),
        }

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        history = frame[lag_columns(self.history)].to_numpy(dtype=float)
        actual = self.targets(frame)
        forecast = np.asarray(model.predict(self.features(frame)), dtype=float)
        scales = naive_scale(history, self.season)
        baseline = seasonal_naive(history, self.horizon, self.season)
        known = np.isfinite(actual)
        return {
            "mase": mase(forecast, actual, scales),
            "seasonal_naive_mase": mase(baseline, actual, scales),
            "mae": float(np.mean(np.abs(forecast - actual)[known])),
            "rmse": rmse(actual[known], forecast[known]),
            "n_rows": float(len(frame)),
        }

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits) -> ForecastCodec:
        return ForecastCodec(model, limits, self)

    def drift_featurizer(self, model: Any, reference: pd.DataFrame) -> ForecastFeaturizer:
        return ForecastFeaturizer(self)

    def feedback(self) -> Feedback:
        return ForecastFeedback()
