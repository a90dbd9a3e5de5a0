"""Drift features of a table model: its columns as the model's schema reads them, and its answers.

Groups (a group with no columns for a table is left out):

* ``numeric`` (continuous) -- numeric columns, and date columns as seconds since
  the epoch, one feature each; missing values take the reference median (KS
  compares distributions, and NaN would blind it);
* ``categorical`` -- categorical and boolean columns as integer codes fitted on
  the reference: each reference category has a code, and every column has one
  more code for values the reference never had ("other") and one for missing
  values, so chi-square sees new categories and a growing share of gaps;
* ``prediction`` -- the predicted class index (classification, categorical) or
  the predicted value (regression, continuous); other tasks name the output field
  (``output_key``): a cluster id is categorical (the cluster mix), an anomaly score
  continuous.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from driftloop.blueprints.drift import DriftFeaturizer, GroupKind, SuggestedDetector
from driftloop.blueprints.tabular.codec import table_schema
from driftloop.blueprints.tabular.schema import TableSchema

_EPOCH = pd.Timestamp(0, tz="UTC")


class TableFeaturizer(DriftFeaturizer):
    def __init__(
        self,
        schema: TableSchema,
        *,
        numeric: dict[str, float],
        categorical: dict[str, list[str]],
        classes: Sequence[str] | None,
        output_key: str | None = None,
    ) -> None:
        self.schema = schema
        self.numeric = dict(numeric)  # column -> reference median (the fill for a missing value)
        self.categorical = {c: list(v) for c, v in categorical.items()}  # column -> categories
        self.classes = None if classes is None else [str(c) for c in classes]
        self._output_key = output_key
        self._codes = {c: {v: i for i, v in enumerate(vs)} for c, vs in self.categorical.items()}
        self._class_index = (
            None if self.classes is None else {c: i for i, c in enumerate(self.classes)}
        )
        groups: dict[str, GroupKind] = {}
        if self.numeric:
            groups["numeric"] = "continuous"
        if self.categorical:
            groups["categorical"] = "categorical"
        groups["prediction"] = "categorical" if self.classifier else "continuous"
        self.groups = groups

    @property
    def output_key(self) -> str:
        # getattr: a reference pickled before answers other than label/prediction existed
        given = getattr(self, "_output_key", None)
        return given or ("label" if self.classifier else "prediction")

    @property
    def classifier(self) -> bool:
        return self.classes is not None

    @classmethod
    def fit(
        cls,
        model: Any,
        features_frame: pd.DataFrame,
        classifier: bool,
        *,
        classes: Sequence[str] | None = None,
        output_key: str | None = None,
    ) -> TableFeaturizer:
        """``classes``: the categories of a categorical answer that is not a classifier's
        label (e.g. cluster ids), read from ``output_key`` of each output."""
        schema = table_schema(model)
        frame = schema.transform(features_frame)
        numeric_columns = schema.columns_of("numeric", "datetime")
        numbers = _numbers(frame, numeric_columns, schema)
        medians = {}
        for column in numeric_columns:
            median = numbers[column].median()
            medians[column] = float(median) if pd.notna(median) else 0.0
        categorical = {
            column: sorted({str(v) for v in _categories(features_frame, frame, column).dropna()})
            for column in schema.columns_of("categorical", "boolean")
        }
        if classes is None and classifier:
            classes = list(model.classes_)
        return cls(
            schema, numeric=medians, categorical=categorical, classes=classes, output_key=output_key
        )

    # --- codes ---------------------------------------------------------------------
    def other_code(self, column: str) -> int:
        return len(self.categorical[column])

    def missing_code(self, column: str) -> int:
        return len(self.categorical[column]) + 1

    def categories(self, group: str) -> dict[int, list[int]] | None:
        if group == "categorical":
            return {
                i: list(range(len(self.categorical[c]) + 2)) for i, c in enumerate(self.categorical)
            }
        if group == "prediction" and self.classifier:
            return {0: list(range(len(self.classes)))}
        return None

    def knows(self, output: dict) -> bool:
        if not isinstance(output, dict):
            return False
        if self.classifier:
            return str(output.get(self.output_key)) in self._class_index
        value = output.get(self.output_key)
        return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)

    # --- features ------------------------------------------------------------------
    def transform(self, model_input: Any, outputs: Sequence[dict]) -> dict[str, np.ndarray]:
        frame = self.schema.transform(model_input)
        if len(frame) != len(outputs):
            raise ValueError(f"{len(frame)} rows but {len(outputs)} outputs")
        features: dict[str, np.ndarray] = {}
        if self.numeric:
            numbers = _numbers(frame, list(self.numeric), self.schema).fillna(self.numeric)
            features["numeric"] = numbers.to_numpy(dtype=np.float32)
        if self.categorical:
            columns = []
            for column, codes in self._codes.items():
                other, missing = self.other_code(column), self.missing_code(column)
                columns.append(
                    [
                        missing if pd.isna(v) else codes.get(str(v), other)
                        for v in _categories(model_input, frame, column).tolist()
                    ]
                )
            features["categorical"] = np.array(columns, dtype=np.int64).T.reshape(len(frame), -1)
        features["prediction"] = self._predictions(outputs)
        return features

    def _predictions(self, outputs: Sequence[dict]) -> np.ndarray:
        if self.classifier:
            try:
                index = [self._class_index[str(o.get(self.output_key))] for o in outputs]
            except KeyError as exc:
                raise ValueError(
                    f"{self.output_key} {exc.args[0]!r} is not one of the model's {self.classes}"
                ) from None
            return np.array(index, dtype=np.int64).reshape(-1, 1)
        values = [float(o[self.output_key]) for o in outputs]
        return np.array(values, dtype=np.float32).reshape(-1, 1)

    def default_detectors(self) -> list[SuggestedDetector]:
        detectors = []
        if "numeric" in self.groups:
            detectors.append(SuggestedDetector("ks-numeric", "ks", "numeric", correction="fdr"))
        if "categorical" in self.groups:
            detectors.append(
                SuggestedDetector("chi2-categorical", "chisquare", "categorical", correction="fdr")
            )
        if self.classifier:
            detectors.append(SuggestedDetector("chi2-prediction", "chisquare", "prediction"))
        else:
            detectors.append(SuggestedDetector("ks-prediction", "ks", "prediction"))
        return detectors


def _categories(raw: pd.DataFrame, coerced: pd.DataFrame, column: str) -> pd.Series:
    """A categorical/boolean column as the schema reads it, missing wherever the input was."""
    return coerced[column].where(~raw[column].isna().to_numpy(), None)


def _numbers(frame: pd.DataFrame, columns: list[str], schema: TableSchema) -> pd.DataFrame:
    """Numeric columns as floats, date columns as seconds since the epoch (NaN where missing)."""
    out = {}
    for column in columns:
        values = frame[column]
        if schema.kinds_[column] == "datetime":
            moments = pd.to_datetime(values, errors="coerce", utc=True)
            out[column] = (moments - _EPOCH).dt.total_seconds().astype(float)
        else:
            out[column] = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.DataFrame(out, index=frame.index, columns=columns)
