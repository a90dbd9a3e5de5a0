"""The tabular blueprint (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.blueprints.base import Blueprint, Metric, ParamChoice, ParamRange
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.feedback import Feedback, LabelFeedback, NumberFeedback
from driftloop.blueprints.scoring import classification_scores, regression_scores
from driftloop.blueprints.tabular.codec import TableCodec
from driftloop.blueprints.tabular.schema import DateParts, TableSchema
from driftloop.datasets.errors import DatasetValidationError

TASKS = ("classification", "regression")
# an integer target with at most this many distinct values reads as classes
MAX_INTEGER_CLASSES = 10
DEFAULT_CLASSIFICATION_FLOOR = 0.5


def infer_task(target: pd.Series) -> tuple[str, str]:
    """(task, why) for a target column."""
    values = target.dropna()
    name = target.name
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification", f"target {name!r} holds non-numeric values"
    distinct = values.nunique()
    if (values % 1 == 0).all() and distinct <= MAX_INTEGER_CLASSES:
        return (
            "classification",
            f"target {name!r} holds {distinct} distinct integers (<= {MAX_INTEGER_CLASSES})",
        )
    return "regression", f"target {name!r} is numeric with {distinct} distinct values"


def class_labels(values: pd.Series) -> pd.Series:
    """A target's classes as text, missing kept: 1.0 and 1 are both "1", True is "True"."""

    def label(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return np.nan
        if isinstance(value, bool | np.bool_):
            return str(bool(value))
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))
        return str(value).strip() if isinstance(value, str) else str(value)

    return values.astype(object).map(label)


def preprocessing(*, scale: bool) -> ColumnTransformer:
    """Imputation and encoding by column kind (the kinds TableSchema's output dtypes carry)."""

    def numeric() -> Pipeline:
        steps = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
        return Pipeline(steps + ([("scale", StandardScaler())] if scale else []))

    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=5,
                    max_categories=30,
                    sparse_output=False,
                ),
            ),
        ]
    )
    dates = Pipeline([("parts", DateParts()), ("rest", numeric())])
    return ColumnTransformer(
        [
            ("numeric", numeric(), make_column_selector(dtype_include="number")),
            ("categorical", categorical, make_column_selector(dtype_include=object)),
            ("dates", dates, make_column_selector(dtype_include="datetimetz")),
        ],
        sparse_threshold=0.0,
    )


def table_pipeline(estimator: Any, *, scale: bool = False) -> Pipeline:
    return Pipeline(
        [
            ("schema", TableSchema()),
            ("prepare", preprocessing(scale=scale)),
            ("model", estimator),
        ]
    )


class TabularBlueprint(Blueprint):
    name: ClassVar[str] = "tabular"
    default_dataset: ClassVar[str] = "penguins"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        task = self.options.get("task", "auto")
        if task not in (*TASKS, "auto"):
            raise ValueError(f"--task must be one of auto, {', '.join(TASKS)}; got {task!r}")
        self.n_jobs = int(self.options.pop("n_jobs", 2))

    # --- options -------------------------------------------------------------------
    @property
    def task(self) -> str:
        task = self.options.get("task", "auto")
        if task == "auto":
            raise ValueError("the tabular task is not resolved yet: call resolve(frame) first")
        return task

    @property
    def classifier(self) -> bool:
        return self.task == "classification"

    @property
    def target_column(self) -> str:
        if not self.options.get("target"):
            raise ValueError("--target: the tabular blueprint needs the column to predict")
        return self.options["target"]

    def prepare(self, dataset: str | None, source: str | None) -> tuple[Blueprint, str, str]:
        """Read the table, fix the task, and check what would fail the run: the target's
        values, every class reaching every split, and enough rows held out for the drift
        reference (a one-line ``ValueError`` naming the option or column and row counts)."""
        from driftloop.datasets.tables import SHIPPED_TABLES
        from driftloop.monitor.reference import MIN_ROWS
        from driftloop.training.splits import check_class_counts, check_row_count

        if dataset and source:
            raise ValueError("--dataset names a shipped table; with --data give neither")
        dataset = None if source else (dataset or self.default_dataset)
        if dataset is not None and not self.options.get("target"):
            _, target = SHIPPED_TABLES.get(dataset, (None, None))
            blueprint: TabularBlueprint = TabularBlueprint(**(self.options | {"target": target}))
        else:
            blueprint = self
        frame = blueprint.load(dataset, source)
        if not blueprint.options.get("target"):
            from driftloop.datasets.tables import column_list

            columns = column_list(c for c in frame.columns if c != self.id_column)
            raise ValueError(f"--target: name the column to predict; columns are {columns}")
        resolved, why = blueprint.resolve(frame)
        frame = resolved._labelled(frame)
        what = source or f"table {dataset!r}"
        resolved.validate(frame, what)
        if resolved.class_column is not None:
            check_class_counts(frame[resolved.class_column].value_counts(), resolved.target_column)
        check_row_count(len(frame), MIN_ROWS)
        notes = [why, f"{len(frame)} rows", frame.attrs.get("ids", "")]
        return resolved, dataset or "file", "; ".join(n for n in notes if n)

    def resolve(self, frame: pd.DataFrame) -> tuple[TabularBlueprint, str]:
        """This instance with ``task`` fixed from the data (when "auto"), and why."""
        if self.target_column not in frame.columns:
            self._missing_target(frame)
        if self.target_column == self.id_column:
            raise DatasetValidationError(
                f"--target: column {self.id_column!r} holds the row ids; predict another column"
            )
        if self.options.get("task", "auto") != "auto":
            return self, f"task {self.task} (given)"
        task, why = infer_task(frame[self.target_column])
        return TabularBlueprint(**(self.options | {"task": task})), f"task {task}: {why}"

    @property
    def default_metric(self) -> Metric:
        if self.classifier:
            return Metric("macro_f1", True, floor=DEFAULT_CLASSIFICATION_FLOOR)
        # an error's scale is the data's: no absolute bound for a first model
        return Metric("rmse", False, floor=None)

    # --- data ----------------------------------------------------------------------
    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        from driftloop.datasets.tables import read_table, shipped_table, with_ids

        if label_mapping:
            raise DatasetValidationError("--label-mapping applies to text datasets, not tables")
        if source:
            frame = read_table(source)
        else:
            frame, _ = shipped_table(dataset or self.options.get("dataset") or self.default_dataset)
        id_column = self.options.get("id_column")
        if id_column is not None and id_column == self.options.get("target"):
            raise DatasetValidationError(
                f"--id-column and --target both name {id_column!r}; the ids cannot be predicted"
            )
        frame, how = with_ids(frame, id_column)
        frame.attrs["ids"] = how
        if self.options.get("task", "auto") != "auto":
            frame = self._labelled(frame)
        return frame

    def _labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with a classification target's classes as text (see ``class_labels``)."""
        target = self.options.get("target")
        if not self.classifier or target not in frame.columns:
            return frame
        labelled = frame.copy()
        labelled[target] = class_labels(frame[target])
        return labelled

    def _missing_target(self, frame: pd.DataFrame) -> None:
        from driftloop.datasets.tables import no_such_column

        columns = [c for c in frame.columns if c != self.id_column]
        raise DatasetValidationError(no_such_column("--target", self.target_column, columns))

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        target = self.target_column
        if target not in frame.columns:
            self._missing_target(frame)
        if frame.empty:
            raise DatasetValidationError(f"{what} has no rows")
        features = [c for c in frame.columns if c not in (self.id_column, target)]
        if not features:
            raise DatasetValidationError(f"{what} has no feature columns besides {target!r}")
        missing = int(frame[target].isna().sum())
        if missing:
            raise DatasetValidationError(
                f"column {target!r}: {missing} of {len(frame)} rows have no target value; "
                "drop or fill them",
                {target: f"{missing} rows empty"},
            )
        report: dict[str, Any] = {"rows": len(frame), "features": features, "target": target}
        if self.classifier:
            counts = frame[target].astype(str).value_counts()
            if len(counts) < 2:
                raise DatasetValidationError(
                    f"column {target!r}: a single class ({counts.index[0]!r}) in "
                    f"{len(frame)} rows; a classifier needs at least two",
                    {target: "single class"},
                )
            report["labels"] = {str(k): int(v) for k, v in counts.sort_index().items()}
        else:
            values = frame[target]
            if values.dtype == object:
                values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
            numbers = pd.to_numeric(values, errors="coerce").astype(float)
            bad = int((~np.isfinite(numbers)).sum())
            if bad:
                example = frame[target][~np.isfinite(numbers)].iloc[0]
                raise DatasetValidationError(
                    f"column {target!r}: {bad} of {len(frame)} rows are not finite numbers "
                    f"(e.g. {example!r}); regression needs a numeric target "
                    "(--task classification predicts classes)",
                    {target: f"{bad} rows not numeric"},
                )
        return report

    @property
    def class_column(self) -> str | None:
        return self.target_column if self.classifier else None

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.target_column]
        if self.classifier:
            return values.astype(str).to_numpy()
        if values.dtype == object:
            values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        return pd.to_numeric(values).astype(float).to_numpy()

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        rows = pd.DataFrame([dict(row) for row in inputs])
        rows[self.target_column] = list(truths)
        return rows

    # --- trainer -------------------------------------------------------------------
    def candidates(self, seed: int) -> dict[str, Pipeline]:
        if self.classifier:
            return {
                "logistic_regression": table_pipeline(
                    LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
                    scale=True,
                ),
                "random_forest": table_pipeline(
                    RandomForestClassifier(
                        n_estimators=200, min_samples_leaf=2, n_jobs=self.n_jobs, random_state=seed
                    )
                ),
                "hist_gradient_boosting": table_pipeline(
                    HistGradientBoostingClassifier(random_state=seed)
                ),
                "xgboost": table_pipeline(
                    StringLabelXGBClassifier(
                        n_estimators=200, max_depth=4, learning_rate=0.1, random_state=seed,
                        n_jobs=self.n_jobs,
                    )
                ),
            }  # fmt: skip
        from xgboost import XGBRegressor

        return {
            "ridge": table_pipeline(Ridge(alpha=1.0), scale=True),
            "random_forest": table_pipeline(
                # fewer, shallower trees than the classifier's: a continuous target grows a
                # leaf per row, and 200 of those on 50k rows take minutes and ~100 MB to serve
                RandomForestRegressor(
                    n_estimators=100, min_samples_leaf=3, n_jobs=self.n_jobs, random_state=seed
                )
            ),
            "hist_gradient_boosting": table_pipeline(
                HistGradientBoostingRegressor(random_state=seed)
            ),
            "xgboost": table_pipeline(
                XGBRegressor(
                    n_estimators=200, max_depth=4, learning_rate=0.1, random_state=seed,
                    n_jobs=self.n_jobs, tree_method="hist",
                )
            ),
        }  # fmt: skip

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        return {
            "logistic_regression": {"model__C": ParamRange(0.01, 100.0, log=True)},
            "ridge": {"model__alpha": ParamRange(0.01, 100.0, log=True)},
            "random_forest": {
                "model__max_depth": ParamChoice((None, 4, 8, 16)),
                "model__min_samples_leaf": ParamRange(1, 10, integer=True),
                "model__max_features": ParamChoice(("sqrt", 0.5, 1.0)),
            },
            "hist_gradient_boosting": {
                "model__learning_rate": ParamRange(0.02, 0.3, log=True),
                "model__max_leaf_nodes": ParamRange(8, 64, integer=True, log=True),
                "model__l2_regularization": ParamRange(1e-4, 10.0, log=True),
            },
            "xgboost": {
                "model__learning_rate": ParamRange(0.02, 0.3, log=True),
                "model__max_depth": ParamRange(2, 8, integer=True),
            },
        }.get(candidate, {})

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        features = self.features(frame)
        if self.classifier:
            return classification_scores(
                self.targets(frame), model.classes_, model.predict_proba(features)
            )
        return regression_scores(self.targets(frame), model.predict(features))

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        if frame is None:
            raise ValueError("the tabular input example comes from the training rows")
        return self.features(frame).head(2).reset_index(drop=True)

    def adopt_model(self, model: Any, train: pd.DataFrame) -> Pipeline:
        """A pipeline fitted elsewhere on the raw columns, behind the schema step serving needs."""
        from driftloop.blueprints.tabular.imported import adopt_table_model

        return adopt_table_model(model, self.features(train))

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> TableCodec:
        return TableCodec(model, limits or Limits(), classifier=self.classifier)

    def drift_featurizer(self, model: Any, reference: pd.DataFrame):
        from driftloop.blueprints.tabular.drift import TableFeaturizer

        return TableFeaturizer.fit(model, self.features(reference), classifier=self.classifier)

    @property
    def feedback(self) -> Feedback:
        return LabelFeedback() if self.classifier else NumberFeedback()

    def explainer(self, model: Any, background: pd.DataFrame | None = None):
        """SHAP per input column (``tabular.explain``), for classification and regression."""
        if getattr(self, "strategy", None) is not None:
            return None  # clusters, anomaly scores, forecasts: no explainer yet
        from driftloop.blueprints.tabular.explain import TableExplainer

        return TableExplainer(model, background, classifier=self.classifier)
