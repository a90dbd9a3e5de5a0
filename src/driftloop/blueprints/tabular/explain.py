"""SHAP explanations of a table model, per input column.

A tabular model is ``TableSchema -> ColumnTransformer -> estimator``. SHAP runs on
the estimator over the transformed matrix (see ``blueprints.explain``), and each
transformed feature's value is summed back into the input column it came from: the
one-hot columns of a category, a number's missing-value indicator, a date's parts.
SHAP values add up, so a column's sum is that column's own SHAP value.

Which input column a transformed feature comes from is read from the fitted
transformers' output names (``get_feature_names_out``); a step with none (the
date-parts step) is taken to emit its outputs column by column, in input order.
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
    explained_output,
    explainer_kind,
    matrix_attributions,
    needs_background,
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
        self.schema: TableSchema = model.steps[0][1]
        self.columns = list(self.schema.kinds_)
        self.prepare = Pipeline(model.steps[:-1])
        self.estimator = model.steps[-1][1]
        self.classes = [str(c) for c in model.classes_] if classifier else None
        kind = explainer_kind(self.estimator)
        self.method = METHODS[kind]
        self.uses_background = needs_background(kind)
        self.background = (
            self.prepare.transform(background.head(BACKGROUND_ROWS))
            if background is not None and self.uses_background
            else None
        )
        probe = self.schema.transform(pd.DataFrame({c: [None] for c in self.columns}))
        steps = model.steps[1:-1]
        if len(steps) == 1 and isinstance(steps[0][1], ColumnTransformer):
            sources = output_sources(steps[0][1], self.columns, probe)
        elif not steps:
            sources = list(self.columns)
        else:
            raise ExplainError("a tabular model's inputs are prepared by one ColumnTransformer")
        # [transformed feature, input column] 0/1: sums each feature into its column
        self.grouping = np.array(
            [[1.0 if source == column else 0.0 for column in self.columns] for source in sources]
        )

    def column_values(self, matrix: np.ndarray) -> np.ndarray:
        """SHAP values [n, d, m] of the transformed features -> [n, columns, m]."""
        return np.einsum("ndm,dc->ncm", matrix, self.grouping)

    def explain(self, model_input: pd.DataFrame, labels: Sequence[str | None]) -> list[Attribution]:
        frame = model_input[self.columns]
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
