"""SHAP explanations of a table model, per input column.

A tabular model is ``TableSchema -> ColumnTransformer -> estimator``. SHAP runs on
the estimator over the transformed matrix (see ``blueprints.explain``), and each
transformed feature's value is summed back into the input column it came from: the
one-hot columns of a category, a number's missing-value indicator, a date's parts.
SHAP values add up, so a column's sum is that column's own SHAP value.

Which input column a transformed feature comes from is read from the fitted
transformers' output names (``get_feature_names_out``); a step with none (the
date-parts step) is taken to emit its outputs column by column, in input order.

A model whose steps after the schema are not one ColumnTransformer and an estimator
(an ensemble whose members each prepare the columns their own way) is explained as a
whole: permutation SHAP over the input columns, against the background rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from driftloop.blueprints.explain import (
    METHODS,
    Attribution,
    Explainer,
    ExplainError,
    MatrixShap,
    explained_output,
    explainer_kind,
    matrix_attributions,
    needs_background,
    permutation_values,
)
from driftloop.blueprints.tabular.schema import TableSchema

# input positions travel through name-less steps as these markers: "\x1d3\x1d" is column 3
_MARK = "\x1d"
_MARKED = re.compile(f"{_MARK}(\\d+){_MARK}")
BACKGROUND_ROWS = 100


class TableExplainer(Explainer):
    def __init__(
        self, model: Any, background: pd.DataFrame | None = None, *, classifier: bool
    ) -> None:
        if not isinstance(model, Pipeline) or not isinstance(model.steps[0][1], TableSchema):
            raise ExplainError("a tabular model is a Pipeline that starts with a TableSchema")
        self.model = model
        self.schema: TableSchema = model.steps[0][1]
        self.columns = list(self.schema.kinds_)
        self.classes = [str(c) for c in model.classes_] if classifier else None
        steps = model.steps[1:-1]
        # opaque: no one ColumnTransformer to read the features' columns from
        self.opaque = not (len(steps) == 1 and isinstance(steps[0][1], ColumnTransformer))
        self.prepare = Pipeline(model.steps[:-1])
        self.estimator = model.steps[-1][1]
        kind = "permutation" if self.opaque else explainer_kind(self.estimator)
        self.method = METHODS[kind] + (" over input columns" if self.opaque else "")
        self.uses_background = needs_background(kind)
        rows = None if background is None else background.head(BACKGROUND_ROWS)
        if rows is None or not self.uses_background:
            self.background = None
        elif self.opaque:
            self.background = rows[self.columns].to_numpy(dtype=object)
        else:
            self.background = self.prepare.transform(rows)
        if self.opaque:
            sources = list(self.columns)
        else:
            probe = self.schema.transform(pd.DataFrame({c: [None] for c in self.columns}))
            sources = output_sources(steps[0][1], self.columns, probe)
        # [transformed feature, input column] 0/1: sums each feature into its column
        self.grouping = np.array(
            [[1.0 if source == column else 0.0 for column in self.columns] for source in sources]
        )

    def column_values(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP values [n, d, m] of the transformed features -> [n, columns, m]."""
        return np.einsum("ndm,dc->ncm", matrix, self.grouping)

    def explain(self, model_input: pd.DataFrame, labels: Sequence[str | None]) -> list[Attribution]:
        frame = model_input[self.columns]
        if self.opaque:
            shap_values = self._whole_model(frame)
        else:
            shap_values = matrix_attributions(
                self.estimator, self.prepare.transform(frame), self.background, self.classes
            )
            shap_values.values = self.column_values(shap_values.values)
        attributions = []
        for row, label in enumerate(labels):
            output, base, contributions = explained_output(shap_values, row, label)
            attributions.append(
                Attribution(
                    output=output,
                    base_value=base,
                    features=list(self.columns),
                    values=frame.iloc[row].tolist(),
                    contributions=np.asarray(contributions, dtype=np.float64),
                )
            )
        return attributions

    def _whole_model(self, frame: pd.DataFrame) -> MatrixShap:
        """Permutation SHAP of the whole model over the input columns (cells as objects)."""
        if self.background is None:
            raise ExplainError(
                "this model is explained against a background sample of training rows, "
                "and this version has none logged (the evaluate step logs it)"
            )

        def predict(cells: np.ndarray) -> np.ndarray:
            rows = pd.DataFrame(cells, columns=self.columns)
            if self.classes is None:
                return self.model.predict(rows)
            return self.model.predict_proba(rows)

        values, base = permutation_values(predict, frame.to_numpy(dtype=object), self.background)
        if self.classes is None:
            return MatrixShap(values, base, ["prediction"], "value")
        return MatrixShap(values, base, list(self.classes), "probability")


def output_sources(
    transformer: ColumnTransformer, columns: list[str], probe: pd.DataFrame
) -> list[str]:
    """The input column each output of a fitted ColumnTransformer comes from."""
    sources: list[str] = []
    for name, step, selected in transformer.transformers_:
        part = transformer.output_indices_[name]
        width = part.stop - part.start
        if width == 0 or (isinstance(step, str) and step == "drop"):
            continue
        selected = _names_of(selected, columns)
        found = _step_sources(step, selected, width, probe[selected])
        if len(found) != width:
            raise ExplainError(
                f"cannot tell which input columns the {width} outputs of step {name!r} come from"
            )
        sources.extend(found)
    return sources


def _names_of(selected: Any, columns: list[str]) -> list[str]:
    if isinstance(selected, str):
        return [selected]
    return [columns[c] if isinstance(c, int | np.integer) else str(c) for c in selected]


def _step_sources(step: Any, selected: list[str], width: int, probe: pd.DataFrame) -> list[str]:
    if len(selected) == 1:
        return selected * width
    if isinstance(step, str):  # "passthrough"
        return list(selected)
    try:
        names = list(step.get_feature_names_out())
    except (AttributeError, ValueError, TypeError):
        names = _walk_names(step, selected, probe)
    return [_source(name, selected) for name in names]


def _walk_names(step: Any, selected: list[str], probe: pd.DataFrame) -> list[str]:
    """Output names of a step (or of each step of a Pipeline) whose whole has none."""
    steps = [s for _, s in step.steps] if isinstance(step, Pipeline) else [step]
    names = [f"{_MARK}{i}{_MARK}" for i in range(len(selected))]
    data: Any = probe
    for sub in steps:
        out = sub.transform(data)
        width = out.shape[1]
        try:
            names = list(sub.get_feature_names_out(names))
        except (AttributeError, ValueError, TypeError):
            try:
                names = list(sub.get_feature_names_out())
            except (AttributeError, ValueError, TypeError):
                if width % len(names):
                    raise ExplainError(
                        f"cannot tell which input columns the outputs of {type(sub).__name__} "
                        "come from"
                    ) from None
                names = [n for n in names for _ in range(width // len(names))]
        data = out
    return names


def _source(name: str, selected: list[str]) -> str:
    marked = _MARKED.search(name)
    if marked:
        return selected[int(marked[1])]
    contained = [column for column in selected if column in name]
    if not contained:
        raise ExplainError(f"cannot tell which input column the feature {name!r} comes from")
    return max(contained, key=len)
