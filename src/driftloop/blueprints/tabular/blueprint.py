"""The tabular blueprint (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

from driftloop.blueprints.base import BOOSTING, Blueprint, Metric, ParamChoice, ParamRange
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.feedback import Feedback, LabelFeedback, NumberFeedback
from driftloop.blueprints.scoring import classification_scores, regression_scores
from driftloop.blueprints.tabular.codec import TableCodec
from driftloop.blueprints.tabular.schema import CategoryFrame, DateParts, TableSchema
from driftloop.blueprints.tabular.tasks import STRATEGIES, strategy_for
from driftloop.datasets.errors import DatasetValidationError

SUPERVISED_TASKS = ("classification", "regression")
TASKS = (*SUPERVISED_TASKS, *STRATEGIES)
# tasks whose models learn from the features alone (a target is optional or absent)
TARGET_OPTIONAL = ("clustering", "anomaly")
# a numeric target this serially correlated, on a regular time column, reads as a series
MIN_SERIES_AUTOCORRELATION = 0.5
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


def infer_series(frame: pd.DataFrame, target: str, id_column: str) -> tuple[str, str] | None:
    """(time column, why) when ``frame`` reads as a series of a numeric ``target``: a date
    column evenly spaced and in order, and the target serially correlated; else None."""
    from driftloop.blueprints.tabular.schema import infer_kind

    values = pd.to_numeric(frame[target], errors="coerce")
    if values.isna().any() or len(values) < 8 or values.nunique() <= MAX_INTEGER_CLASSES:
        return None
    autocorrelation = values.autocorr(lag=1)
    if not np.isfinite(autocorrelation) or autocorrelation < MIN_SERIES_AUTOCORRELATION:
        return None
    for column in frame.columns:
        if column in (id_column, target) or infer_kind(frame[column]) != "datetime":
            continue
        times = pd.to_datetime(frame[column], errors="coerce", format="mixed")
        if times.isna().any() or not times.is_monotonic_increasing or times.duplicated().any():
            continue
        freq = pd.infer_freq(pd.DatetimeIndex(times))
        if freq is not None:
            return column, (
                f"column {column!r} is a regular time index (frequency {freq}) and target "
                f"{target!r} is serially correlated (lag-1 autocorrelation "
                f"{autocorrelation:.2f})"
            )
    return None


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


def category_pipeline(estimator: Any) -> Pipeline:
    """The table's columns with text as pandas categories, for a learner that splits on
    categories itself (LightGBM; see ``CategoryFrame``)."""
    return Pipeline([("schema", TableSchema()), ("prepare", CategoryFrame()), ("model", estimator)])


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
        # threads per fit; unset: decided when the candidates are built (training.budget)
        n_jobs = self.options.pop("n_jobs", None)
        self._n_jobs = None if n_jobs is None else int(n_jobs)
        contamination = self.options.get("contamination")
        if contamination is not None and not 0 < float(contamination) <= 0.5:
            raise ValueError(f"--contamination must be in (0, 0.5], got {contamination}")
        horizon = self.options.get("horizon")
        if horizon is not None and int(horizon) < 1:
            raise ValueError(f"--horizon must be at least 1, got {horizon}")
        # the task's strategy: None for classification and regression (this class's own)
        self.strategy = strategy_for(task, self.options)

    # --- options -------------------------------------------------------------------
    @property
    def n_jobs(self) -> int:
        """Threads per fit: the ``n_jobs`` option, else ``fit_threads()`` (every core, or
        one on an oversubscribed machine)."""
        from driftloop.training.budget import fit_threads

        return self._n_jobs if self._n_jobs is not None else fit_threads()

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
    def target_column(self) -> str | None:
        """The ground truth's column; None for a clustering, or an anomaly detection
        without a label column: their models fit on the features alone."""
        if self.strategy is not None:
            return self.strategy.target_column
        if not self.options.get("target"):
            raise ValueError("--target: the tabular blueprint needs the column to predict")
        return self.options["target"]

    def prepare(self, dataset: str | None, source: str | None) -> tuple[Blueprint, str, str]:
        """Read the table, fix the task, and check what would fail the run: the target's
        values, every class reaching every split, and enough rows held out for the drift
        reference (a one-line ``ValueError`` naming the option or column and row counts)."""
        from driftloop.datasets.tables import SHIPPED_DEFAULTS, SHIPPED_TABLES, column_list
        from driftloop.monitor.reference import MIN_ROWS
        from driftloop.training.splits import check_class_counts, check_row_count

        if dataset and source:
            raise ValueError("--dataset names a shipped table; with --data give neither")
        dataset = None if source else (dataset or self.default_dataset)
        task = self.options.get("task", "auto")
        if task == "clustering" and self.options.get("target"):
            raise ValueError("--target: a clustering has no target; leave --target out")
        options = dict(self.options)
        notes = []
        if dataset is not None:
            _, shipped_target = SHIPPED_TABLES.get(dataset, (None, None))
            for key, value in SHIPPED_DEFAULTS.get(dataset, {}).items():
                options.setdefault(key, value)
            if task != "clustering" and shipped_target and not options.get("target"):
                options["target"] = shipped_target
        blueprint = TabularBlueprint(**options)
        frame = blueprint._raw(dataset, source)
        if frame.attrs.get("left_out"):
            notes.append(frame.attrs["left_out"])
        if not blueprint.options.get("target") and task not in TARGET_OPTIONAL:
            columns = column_list(c for c in frame.columns if c != self.id_column)
            raise ValueError(f"--target: name the column to predict; columns are {columns}")
        resolved, why = blueprint.resolve(frame)
        resolved._check_task_options()
        frame = resolved.task_frame(frame)
        what = source or f"table {dataset!r}"
        resolved.validate(frame, what)
        if resolved.class_column is not None:
            check_class_counts(frame[resolved.class_column].value_counts(), resolved.target_column)
        check_row_count(len(frame), MIN_ROWS)
        notes = [why, *notes, f"{len(frame)} rows", frame.attrs.get("ids", "")]
        return resolved, dataset or "file", "; ".join(n for n in notes if n)

    def _check_task_options(self) -> None:
        """Options of another task than the one resolved: a mistake worth one line."""
        for option, task in (
            ("contamination", "anomaly"),
            ("horizon", "timeseries"),
            ("time_column", "timeseries"),
        ):
            if self.options.get(option) is not None and self.task != task:
                flag = "--" + option.replace("_", "-")
                raise ValueError(f"{flag} applies to --task {task}, not {self.task}")

    def resolve(self, frame: pd.DataFrame) -> tuple[TabularBlueprint, str]:
        """This instance with ``task`` fixed from the data (when "auto"), its data-dependent
        options settled (a series' frequency), and why."""
        target = self.options.get("target")
        if target is not None and target not in frame.columns:
            self._missing_target(frame, option="--target", name=target)
        if target is not None and target == self.id_column:
            raise DatasetValidationError(
                f"--target: column {self.id_column!r} holds the row ids; predict another column"
            )
        task = self.options.get("task", "auto")
        if task != "auto":
            resolved, why = self, f"task {task} (given)"
        elif self.options.get("time_column"):
            resolved = TabularBlueprint(**(self.options | {"task": "timeseries"}))
            why = f"task timeseries: --time-column {self.options['time_column']!r} given"
        elif (series := infer_series(frame, self.target_column, self.id_column)) is not None:
            column, reason = series
            options = self.options | {"task": "timeseries", "time_column": column}
            resolved, why = TabularBlueprint(**options), f"task timeseries: {reason}"
        else:
            task, reason = infer_task(frame[self.target_column])
            resolved, why = (
                TabularBlueprint(**(self.options | {"task": task})),
                f"task {task}: {reason}",
            )
        if resolved.strategy is None:
            return resolved, why
        settled, note = resolved.strategy.settle(frame)
        if settled:
            resolved = TabularBlueprint(**(resolved.options | settled))
        return resolved, "; ".join(n for n in (why, note) if n)

    @property
    def default_metric(self) -> Metric:
        if self.strategy is not None:
            return self.strategy.default_metric()
        if self.classifier:
            return Metric("macro_f1", True, floor=DEFAULT_CLASSIFICATION_FLOOR)
        # an error's scale is the data's: no absolute bound for a first model
        return Metric("rmse", False, floor=None)

    # --- data ----------------------------------------------------------------------
    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        if label_mapping:
            raise DatasetValidationError("--label-mapping applies to text datasets, not tables")
        frame = self._raw(dataset, source)
        if self.options.get("task", "auto") != "auto":
            frame = self.task_frame(frame)
        return frame

    def _raw(self, dataset: str | None, source: str | None) -> pd.DataFrame:
        """The table as read, with its ``id`` column."""
        from driftloop.datasets.tables import read_table, shipped_table, with_ids

        if source:
            frame = read_table(source)
        else:
            frame, answer = shipped_table(
                dataset or self.options.get("dataset") or self.default_dataset
            )
            # a task without a target must not see a shipped table's answer column
            if self.options.get("task", "auto") != "auto" and self.target_column is None:
                frame = frame.drop(columns=[answer], errors="ignore")
                frame.attrs["left_out"] = f"column {answer!r} left out"
        id_column = self.options.get("id_column")
        if id_column is not None and id_column == self.options.get("target"):
            raise DatasetValidationError(
                f"--id-column and --target both name {id_column!r}; the ids cannot be predicted"
            )
        left_out = frame.attrs.get("left_out", "")
        frame, how = with_ids(frame, id_column)
        frame.attrs["ids"] = how
        frame.attrs["left_out"] = left_out
        return frame

    def task_frame(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The training rows of a raw table: classes as text, or a series' windows."""
        if self.strategy is not None:
            frame = self.strategy.task_frame(raw)
            frame.attrs.setdefault("ids", raw.attrs.get("ids", ""))
            return frame
        return self._labelled(raw)

    def _labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with a classification target's classes as text (see ``class_labels``)."""
        target = self.options.get("target")
        if not self.classifier or target not in frame.columns:
            return frame
        labelled = frame.copy()
        labelled[target] = class_labels(frame[target])
        return labelled

    def _missing_target(
        self, frame: pd.DataFrame, option: str = "--target", name: str | None = None
    ) -> None:
        from driftloop.datasets.tables import no_such_column

        columns = [c for c in frame.columns if c != self.id_column]
        raise DatasetValidationError(no_such_column(option, name or self.target_column, columns))

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        if self.strategy is not None:
            target = self.strategy.target_column
            if target is not None and target not in frame.columns:
                self._missing_target(frame)
            return self.strategy.validate(frame, what)
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
            if numbers.nunique() < 2:
                raise DatasetValidationError(
                    f"column {target!r}: every one of the {len(frame)} rows holds "
                    f"{numbers.iloc[0]:g}; a constant target leaves nothing to learn",
                    {target: "constant"},
                )
        return report

    @property
    def class_column(self) -> str | None:
        if self.strategy is not None:
            return self.strategy.class_column
        return self.target_column if self.classifier else None

    def features(self, frame: pd.DataFrame) -> Any:
        if self.strategy is not None:
            return self.strategy.features(frame)
        return super().features(frame)

    def targets(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The ground truth to fit on (None: the task's models fit on the features alone)."""
        if self.strategy is not None:
            return self.strategy.targets(frame)
        values = frame[self.target_column]
        if self.classifier:
            return values.astype(str).to_numpy()
        if values.dtype == object:
            values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        return pd.to_numeric(values).astype(float).to_numpy()

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        if self.strategy is not None:
            return self.strategy.rows_from_feedback(inputs, truths)
        rows = pd.DataFrame([dict(row) for row in inputs])
        rows[self.target_column] = list(truths)
        return rows

    # --- trainer -------------------------------------------------------------------
    def candidates(self, seed: int) -> dict[str, Any]:
        n_jobs = self.n_jobs
        if self.strategy is not None:
            return self.strategy.candidates(seed, n_jobs)
        from lightgbm import LGBMClassifier, LGBMRegressor

        # LightGBM's own defaults (what the reference systems start from), quiet
        lightgbm = {"random_state": seed, "n_jobs": n_jobs, "verbose": -1}
        # LightGBM at its defaults comes first: the strong default every search scores before
        # anything else (phase 1 goes in declaration order within a tier), and near-ties go
        # to it
        if self.classifier:
            return {
                # LightGBM keeps string labels itself (its classes_ are the originals)
                "lightgbm": category_pipeline(LGBMClassifier(**lightgbm)),
                "logistic_regression": table_pipeline(
                    LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
                    scale=True,
                ),
                "random_forest": table_pipeline(
                    RandomForestClassifier(
                        n_estimators=200, min_samples_leaf=2, n_jobs=n_jobs, random_state=seed
                    )
                ),
                "hist_gradient_boosting": table_pipeline(
                    HistGradientBoostingClassifier(random_state=seed)
                ),
                "xgboost": table_pipeline(
                    StringLabelXGBClassifier(
                        n_estimators=200, max_depth=4, learning_rate=0.1, random_state=seed,
                        n_jobs=n_jobs,
                    )
                ),
            }  # fmt: skip
        from xgboost import XGBRegressor

        return {
            "lightgbm": category_pipeline(LGBMRegressor(**lightgbm)),
            "ridge": table_pipeline(Ridge(alpha=1.0), scale=True),
            "random_forest": table_pipeline(
                # fewer, shallower trees than the classifier's: a continuous target grows a
                # leaf per row, and 200 of those on 50k rows take minutes and ~100 MB to serve
                RandomForestRegressor(
                    n_estimators=100, min_samples_leaf=3, n_jobs=n_jobs, random_state=seed
                )
            ),
            "hist_gradient_boosting": table_pipeline(
                HistGradientBoostingRegressor(random_state=seed)
            ),
            "xgboost": table_pipeline(
                XGBRegressor(
                    n_estimators=200, max_depth=4, learning_rate=0.1, random_state=seed,
                    n_jobs=n_jobs, tree_method="hist",
                )
            ),
        }  # fmt: skip

    def tuning_space(self, candidate: str) -> dict[str, ParamRange | ParamChoice]:
        if self.strategy is not None:
            return self.strategy.tuning_space(candidate)
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
            "lightgbm": {
                "model__num_leaves": ParamRange(8, 128, integer=True, log=True),
                "model__learning_rate": ParamRange(0.02, 0.3, log=True),
                "model__n_estimators": ParamRange(50, 400, integer=True, log=True),
                "model__min_child_samples": ParamRange(5, 50, integer=True, log=True),
                "model__reg_lambda": ParamRange(1e-3, 10.0, log=True),
                "model__colsample_bytree": ParamRange(0.5, 1.0),
            },
        }.get(candidate, {})

    def continuation(self, model: Any, frame: pd.DataFrame, source: str = "") -> Any:
        """The version's model continued on the new rows (``Blueprint.continuation``), when
        its ``TableSchema`` holds the same columns as the new rows' features: the fitted
        preprocessing is kept, so a column added, dropped or renamed stops it."""
        from driftloop.training.continuation import CannotContinue, column_difference

        first = model.steps[0][1] if isinstance(model, Pipeline) else None
        if isinstance(first, TableSchema):
            differ = column_difference(first.columns_, self.features(frame).columns)
            if differ:
                raise CannotContinue(f"columns differ: {differ}")
        return super().continuation(model, frame, source)

    def candidate_tiers(self) -> dict[str, str]:
        """Presets pick candidates by cost: the heavier gradient boosting only from preset
        medium on. LightGBM at its defaults (100 rounds of 31 leaves, histogram splits) fits
        as fast as the small forest and is the strongest default on tables, so it is light."""
        if self.strategy is not None:
            return getattr(self.strategy, "candidate_tiers", dict)()
        # the rest: LIGHT
        return {"hist_gradient_boosting": BOOSTING, "xgboost": BOOSTING}

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        if self.strategy is not None:
            return self.strategy.score(model, frame)
        if frame.empty:
            raise ValueError("cannot score a model on an empty frame")
        features = self.features(frame)
        if self.classifier:
            return classification_scores(
                self.targets(frame), model.classes_, model.predict_proba(features)
            )
        return regression_scores(self.targets(frame), model.predict(features))

    def row_scorer(self, model: Any, frame: pd.DataFrame) -> Callable[[Rows], float] | None:
        """The primary metric of ``model`` on row positions of ``frame`` (None: every row),
        from one prediction of the whole frame: what a bootstrap resamples thousands of times
        (``training.significance``), the same value ``score`` gives those rows. None where
        only ``score`` computes it (the other tasks, the other metrics)."""
        if self.strategy is not None or frame.empty:
            return None
        metric, features, truth = self.primary_metric, self.features(frame), self.targets(frame)
        if not self.classifier:
            if metric not in ("rmse", "mae"):
                return None
            errors = truth - np.asarray(model.predict(features), dtype=float)
            if metric == "rmse":
                return lambda rows: float(np.sqrt(np.mean(_at(errors, rows) ** 2)))
            return lambda rows: float(np.mean(np.abs(_at(errors, rows))))
        classes = np.asarray(model.classes_).astype(str)
        if metric not in ("roc_auc", "log_loss") or not set(truth) <= set(classes):
            return None
        proba = np.asarray(model.predict_proba(features), dtype=float)
        if metric == "roc_auc":
            return None if len(classes) != 2 else _roc_auc_of(truth == classes[1], proba[:, 1])
        return _log_loss_of(truth, classes, proba)

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        if frame is None:
            raise ValueError("the tabular input example comes from the training rows")
        if self.strategy is not None:
            return self.strategy.input_example(frame)
        return self.features(frame).head(2).reset_index(drop=True)

    def adopt_model(self, model: Any, train: pd.DataFrame) -> Pipeline:
        """A pipeline fitted elsewhere on the raw columns, behind the schema step serving needs."""
        from driftloop.blueprints.tabular.imported import adopt_table_model

        return adopt_table_model(model, self.features(train))

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> Any:
        if self.strategy is not None:
            return self.strategy.codec(model, limits or Limits())
        return TableCodec(model, limits or Limits(), classifier=self.classifier)

    def drift_featurizer(self, model: Any, reference: pd.DataFrame):
        from driftloop.blueprints.tabular.drift import TableFeaturizer

        if self.strategy is not None:
            return self.strategy.drift_featurizer(model, reference)
        return TableFeaturizer.fit(model, self.features(reference), classifier=self.classifier)

    @property
    def feedback(self) -> Feedback:
        if self.strategy is not None:
            return self.strategy.feedback()
        return LabelFeedback() if self.classifier else NumberFeedback()

    def explainer(self, model: Any, background: pd.DataFrame | None = None):
        """SHAP per input column (``tabular.explain``), for classification and regression."""
        if getattr(self, "strategy", None) is not None:
            return None  # clusters, anomaly scores, forecasts: no explainer yet
        from driftloop.blueprints.tabular.explain import TableExplainer

        return TableExplainer(model, background, classifier=self.classifier)


# --- the primary metric on row positions (row_scorer) ------------------------------
Rows = np.ndarray | None


def _at(values: np.ndarray, rows: Rows) -> np.ndarray:
    return values if rows is None else values[rows]


def _roc_auc_of(positive: np.ndarray, scores: np.ndarray) -> Callable[[Rows], float]:
    """ROC-AUC by the rank-sum (Mann-Whitney) formula, ties at their average rank: what
    ``roc_auc_score`` computes. One class alone has no ROC-AUC (ValueError, as there)."""
    from scipy.stats import rankdata

    def roc_auc(rows: Rows) -> float:
        labels, values = _at(positive, rows), _at(scores, rows)
        positives = int(labels.sum())
        negatives = len(labels) - positives
        if positives == 0 or negatives == 0:
            raise ValueError("ROC-AUC needs both classes among the rows")
        ranks = rankdata(values)
        return float(
            (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
        )

    return roc_auc


def _log_loss_of(
    truth: np.ndarray, classes: np.ndarray, proba: np.ndarray
) -> Callable[[Rows], float]:
    """Log-loss as ``log_loss(truth, proba, labels=classes)`` computes it (columns read in
    sorted label order, probabilities clipped to [eps, 1 - eps]); ``score`` has none for rows
    of a single class (ValueError here)."""
    ordered = np.sort(classes)
    true_column = np.searchsorted(ordered, truth)
    eps = np.finfo(proba.dtype).eps
    losses = -np.log(np.clip(proba[np.arange(len(truth)), true_column], eps, 1 - eps))

    def log_loss(rows: Rows) -> float:
        taken = _at(true_column, rows)
        if not (taken != taken[0]).any():
            raise ValueError("log-loss is scored on rows of more than one class")
        return float(np.mean(_at(losses, rows)))

    return log_loss
