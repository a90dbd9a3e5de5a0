"""Tiny real data and a cheap blueprint for the search tests (seconds, not minutes).

The blueprint is the tabular one with two small candidates whose stages differ:
a 16-tree random forest (grown with ``warm_start``) and a logistic SGD
classifier (``partial_fit`` on row chunks); the shared machinery must find both
capabilities on its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier

from driftloop.blueprints.base import BOOSTING, LIGHT, ParamChoice, ParamRange
from driftloop.blueprints.tabular.blueprint import TabularBlueprint, table_pipeline


class SmallTable(TabularBlueprint):
    def __init__(self, **options):
        super().__init__(**({"target": "y", "task": "classification"} | options))

    def candidates(self, seed: int) -> dict:
        return {
            "sgd": table_pipeline(
                SGDClassifier(loss="log_loss", alpha=1e-3, random_state=seed), scale=True
            ),
            "forest": table_pipeline(
                RandomForestClassifier(n_estimators=16, n_jobs=1, random_state=seed)
            ),
        }

    def tuning_space(self, candidate: str) -> dict:
        return {
            "sgd": {"model__alpha": ParamRange(1e-5, 1.0, log=True)},
            "forest": {
                "model__max_depth": ParamChoice((2, 4, None)),
                "model__min_samples_leaf": ParamRange(1, 20, integer=True),
            },
        }.get(candidate, {})

    def candidate_tiers(self) -> dict[str, str]:
        return {"sgd": LIGHT, "forest": BOOSTING}


def small_table(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A generated two-class table with an ``id`` column, some noise in the labels."""
    features, labels = make_classification(
        n_samples=rows, n_features=6, n_informative=3, flip_y=0.1, random_state=seed
    )
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(features.shape[1])])
    frame["y"] = np.where(labels == 1, "yes", "no")
    frame.insert(0, "id", [f"row-{i}" for i in range(rows)])
    return frame


def train_val(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(frame) * 0.75)
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


@contextlib.contextmanager
def own_registry_settings(tmp_path_factory, name: str) -> Iterator:  # noqa: ANN001
    """Settings whose registry and Optuna studies live in a fresh home (MLFLOW_TRACKING_URI
    pointed there for the block), for a module that registers versions."""
    import pytest

    from driftloop.settings import Settings

    home = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        patch.delenv("DRIFTLOOP_TRACKING_URI", raising=False)
        patch.delenv("DRIFTLOOP_OPTUNA_STORAGE", raising=False)
        yield Settings(home=home)
