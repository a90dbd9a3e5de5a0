"""The systems the AutoML benchmark compares, one adapter class each.

Every adapter: ``fit(X_train, y_train, task, budget_s, seed) -> Predictor``,
``task`` one of binary / multiclass / regression. A ``Predictor`` answers
``predict_proba`` (columns in ``classes_`` order) for classification and
``predict`` for regression, and carries ``info`` (what the system chose, and
whether the budget was applied) for the report.

- ``DriftloopTabular``: driftloop's own training API in-process
  (``train_candidates`` with the ``tabular`` blueprint ranked by the
  benchmark's metric), MLflow pointed at a throwaway sqlite store. The inner
  validation rows come from the outer training part (80/20, stratified for
  classes). ``train_driftloop`` passes the time budget where
  ``train_candidates`` accepts one, and says so when it does not.
- ``Flaml``: ``flaml.AutoML`` with ``time_budget`` = the budget and the
  benchmark's metric, default estimators.
- ``DefaultLightGBM``: ``LGBMClassifier`` / ``LGBMRegressor`` with default
  parameters (text columns as pandas categories, which LightGBM splits on
  natively); it ignores the budget.

Threads: every system runs under the same rule, ``fit_threads()`` of
``driftloop.training.budget`` read at the start of each fit (every core, or
one when the machine's load is at or above its core count: OpenMP learners
slow down by 30x and more on 2 threads of an oversubscribed box). It is the
``n_jobs`` of FLAML and of default LightGBM (a resource, not a
hyperparameter), driftloop's own default, and ``evaluate`` holds every fit's
OpenMP/BLAS pools to it.
- ``ConstantPredictor``: the class prior / the training mean; what a failed
  or over-budget system is scored as.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bench.automl_datasets import METRIC_BY_TASK, class_prior

EXPERIMENT = "bench-automl"
INNER_VAL_SIZE = 0.2
WARM_UP_BUDGET_S = 2.0
DRIFTLOOP_PRESET = "best"  # the time-budgeted preset (training.presets)
# share of the benchmark budget handed to driftloop: its time budget bounds the whole
# train_candidates call (search, refit, ensembles, MLflow model logging), so all of it
DRIFTLOOP_BUDGET_SHARE = 1.0


@dataclass
class Predictor:
    model: Any
    classes_: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    prepare: Any = None  # X -> what ``model`` expects (None: X itself)

    def _x(self, X: pd.DataFrame) -> Any:
        return X if self.prepare is None else self.prepare(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self._x(X)), dtype=float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(self._x(X)), dtype=float)


class ConstantPredictor:
    """The class prior (classification) or the training mean (regression), for every row."""

    name = "constant"

    def fit(
        self, X_train: pd.DataFrame, y_train: pd.Series, task: str, budget_s: float, seed: int
    ) -> Predictor:
        return Predictor(_Constant(y_train, task), _classes(y_train, task), {})


class _Constant:
    def __init__(self, y: pd.Series, task: str) -> None:
        self.classes = _classes(y, task)
        self.prior = class_prior(y, self.classes) if self.classes else None
        self.mean = None if self.classes else float(np.mean(y))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.tile(self.prior, (len(X), 1))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.mean)


def _classes(y: pd.Series, task: str) -> list[str] | None:
    return None if task == "regression" else sorted(y.astype(str).unique())


def warm_up(system) -> None:
    """One untimed fit on a tiny table: the imports a first fit triggers (FLAML's
    learners, xgboost, optuna, MLflow's model logging: up to ~30 s on a busy
    machine) are not what a budget measures."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=80), "c": rng.choice(["p", "q"], size=80)})
    y = pd.Series(np.where(X["x"] > 0, "yes", "no"))
    try:
        system.fit(X, y, "binary", WARM_UP_BUDGET_S, 0)
    except ValueError as exc:  # e.g. driftloop: "budget too small for one trial"; imports done
        logging.getLogger(__name__).info("warm-up of %s: %s", type(system).__name__, exc)


# --- default LightGBM ---------------------------------------------------------------
def as_categories(X: pd.DataFrame, levels: dict[str, list]) -> pd.DataFrame:
    """``X`` with each text column as a pandas category over the training levels."""
    out = X.copy()
    for column, values in levels.items():
        out[column] = pd.Categorical(out[column], categories=values)
    return out


class DefaultLightGBM:
    name = "LightGBM (default)"

    def prepare(self) -> None:
        warm_up(self)

    def fit(
        self, X_train: pd.DataFrame, y_train: pd.Series, task: str, budget_s: float, seed: int
    ) -> Predictor:
        import lightgbm as lgb

        levels = {
            c: sorted(X_train[c].dropna().astype(str).unique())
            for c in X_train.columns
            if not pd.api.types.is_numeric_dtype(X_train[c])
        }
        prepare = lambda X: as_categories(X, levels)  # noqa: E731 - one expression
        from driftloop.training.budget import fit_threads

        threads = fit_threads()
        if task == "regression":
            model = lgb.LGBMRegressor(random_state=seed, verbose=-1, n_jobs=threads)
        else:
            model = lgb.LGBMClassifier(random_state=seed, verbose=-1, n_jobs=threads)
        model.fit(prepare(X_train), y_train)
        classes = None if task == "regression" else [str(c) for c in model.classes_]
        info = {"budget": "none (default parameters)", "threads": threads}
        return Predictor(model, classes, info, prepare)


# --- FLAML ---------------------------------------------------------------------------
class Flaml:
    name = "FLAML"

    def __init__(self, n_jobs: int | None = None) -> None:
        self.n_jobs = n_jobs  # None: the bench's thread rule (fit_threads) at each fit

    def prepare(self) -> None:
        warm_up(self)

    def fit(
        self, X_train: pd.DataFrame, y_train: pd.Series, task: str, budget_s: float, seed: int
    ) -> Predictor:
        from flaml import AutoML

        from driftloop.training.budget import fit_threads

        threads = self.n_jobs if self.n_jobs is not None else fit_threads()
        logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)
        automl = AutoML()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            automl.fit(
                X_train,
                y_train,
                task="regression" if task == "regression" else "classification",
                metric=METRIC_BY_TASK[task],
                time_budget=budget_s,
                seed=seed,
                n_jobs=threads,
                verbose=0,
                mlflow_logging=False,
            )
        classes = None if task == "regression" else [str(c) for c in automl.classes_]
        info = {
            "best": automl.best_estimator,
            "budget": f"time_budget={budget_s:g} s",
            "threads": threads,
        }
        return Predictor(automl, classes, info)


# --- driftloop -------------------------------------------------------------------------
def train_driftloop(
    blueprint, train: pd.DataFrame, val: pd.DataFrame, *, budget_s: float, seed: int
):
    """driftloop's own training call; returns (TrainResult, how the budget was applied).

    Where ``train_candidates`` takes search settings (``training.presets``), the
    ``DRIFTLOOP_PRESET`` preset runs bounded by the benchmark's budget (the whole call:
    the search, refit, ensembles when they fit, and model logging); otherwise the
    default candidate set is trained and the result says no budget was applied.
    """
    from driftloop.training.candidates import train_candidates

    common = {"seed": seed, "experiment": EXPERIMENT}
    if "search" not in inspect.signature(train_candidates).parameters:
        result = train_candidates(blueprint, train, val, **common)
        return result, "none: train_candidates takes no time budget (default candidate set)"
    from driftloop.training.presets import SearchSettings

    search_budget = budget_s * DRIFTLOOP_BUDGET_SHARE
    search = SearchSettings(preset=DRIFTLOOP_PRESET, time_budget_s=search_budget)
    result = train_candidates(blueprint, train, val, search=search, **common)
    return result, f"preset {DRIFTLOOP_PRESET}, time budget {search_budget:g} s"


class DriftloopTabular:
    """driftloop's ``tabular`` blueprint trained by ``train_candidates`` (in-process)."""

    name = "driftloop tabular"

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home or tempfile.mkdtemp(prefix="driftloop-automl-"))
        self._ready = False

    def tracking(self):
        """MLflow and DRIFTLOOP_HOME pointed at this adapter's throwaway home."""
        from bench.fixtures import driftloop_home

        return driftloop_home(self.home)

    def prepare(self) -> None:
        """Create the sqlite store and experiment once, then warm up, outside any timed fit."""
        from driftloop.training.candidates import ensure_experiment, use_tracking

        with self.tracking():
            use_tracking()
            ensure_experiment(EXPERIMENT)
        self._ready = True
        warm_up(self)

    def fit(
        self, X_train: pd.DataFrame, y_train: pd.Series, task: str, budget_s: float, seed: int
    ) -> Predictor:
        from driftloop.blueprints.tabular.blueprint import TabularBlueprint

        if not self._ready:
            self.prepare()
        target = _free_column_name(X_train)
        frame = X_train.assign(**{target: y_train.to_numpy()})
        classification = task != "regression"
        train, val = train_test_split(
            frame,
            test_size=INNER_VAL_SIZE,
            random_state=seed,
            stratify=frame[target] if classification else None,
        )
        blueprint = TabularBlueprint(
            target=target,
            task="classification" if classification else "regression",
            metric=METRIC_BY_TASK[task],
        )
        threads = blueprint.n_jobs  # the thread rule as the candidates are built
        with self.tracking(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, applied = train_driftloop(
                blueprint,
                train.reset_index(drop=True),
                val.reset_index(drop=True),
                budget_s=budget_s,
                seed=seed,
            )
        classes = [str(c) for c in result.model.classes_] if classification else None
        info = {"best": result.best_candidate, "budget": applied, "threads": threads}
        return Predictor(result.model, classes, info)


def _free_column_name(X: pd.DataFrame) -> str:
    name = "target"
    while name in X.columns:
        name = f"_{name}"
    return name


SYSTEMS = {"driftloop": DriftloopTabular, "flaml": Flaml, "lightgbm": DefaultLightGBM}
