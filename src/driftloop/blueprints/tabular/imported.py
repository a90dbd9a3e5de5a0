"""A table model fitted outside driftloop, made into one the tabular blueprint serves.

Every tabular model driftloop serves starts with a fitted ``TableSchema``: the
codec reads the wire columns and their kinds from it, and it types the rows a
request carries (JSON numbers and strings arrive as one object column) before
the model sees them. A pipeline brought from elsewhere takes the raw table
columns, so it is put behind a schema fitted on the columns it was fitted on.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from driftloop.blueprints.tabular.schema import TableSchema

SCHEMA_STEP = "schema"
MODEL_STEP = "model"


def model_columns(model: Any) -> list[str] | None:
    """The columns the model was fitted on, when it recorded them (``feature_names_in_``)."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def adopt_table_model(model: Any, features: pd.DataFrame) -> Pipeline:
    """``model`` behind a ``TableSchema`` fitted on ``features`` (the columns it takes).

    A model that recorded its columns keeps exactly those, in its order; other
    columns of the table are not served. A column it needs that the table
    lacks is a ``ValueError`` naming it (the ``--data`` option's problem).
    """
    first = model.steps[0][1] if isinstance(model, Pipeline) else None
    if isinstance(first, TableSchema):
        return model  # already a driftloop table model
    columns = model_columns(model)
    if columns is not None:
        missing = [c for c in columns if c not in features.columns]
        if missing:
            from driftloop.datasets.tables import column_list

            raise ValueError(
                f"--data: the model takes column(s) {', '.join(map(repr, missing))} that the "
                f"table lacks; its feature columns are {column_list(features.columns)}"
            )
        features = features[columns]
    schema = TableSchema().fit(features)
    return Pipeline([(SCHEMA_STEP, schema), (MODEL_STEP, model)])
