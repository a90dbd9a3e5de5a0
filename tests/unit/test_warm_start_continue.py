"""Retraining from a registered version continues its fitted learner on the new rows.

Real MLflow (sqlite under tmp), real registry, real LightGBM / XGBoost / scikit-learn
fits on the penguins table (344 rows): version 1 is trained on one half, the retraining
on the other half with a shifted column.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from driftloop.blueprints.tabular.blueprint import TabularBlueprint
from driftloop.datasets.tables import shipped_table
from driftloop.registry import promote_version, register_from_run
from driftloop.training.candidates import _refit, train_candidates
from driftloop.training.continuation import CannotContinue, ContinuedModel, served
from driftloop.training.model_logging import load_native
from driftloop.training.warm_start import TAG_WARM_START
from tests.unit.search_fixtures import own_registry_settings

pytestmark = pytest.mark.slow


def penguins() -> pd.DataFrame:
    frame = shipped_table("penguins")[0].dropna(subset=["species"]).reset_index(drop=True)
    frame.insert(0, "id", [f"p{i}" for i in range(len(frame))])
    return frame


def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The old rows and the new ones (bill lengths measured 2 mm longer: a drift)."""
    frame = penguins().sample(frac=1.0, random_state=0).reset_index(drop=True)
    old, new = frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :].copy()
    new["bill_length_mm"] = new["bill_length_mm"] + 2.0
    return old.reset_index(drop=True), new.reset_index(drop=True)


def train_val(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(frame) * 0.7)
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def blueprint() -> TabularBlueprint:
    return TabularBlueprint(target="species", task="classification", n_jobs=1)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    with own_registry_settings(tmp_path_factory, "continue-home") as settings:
        yield settings


@pytest.fixture(scope="module")
def version_one(settings):
    """``penguins`` version 1: LightGBM at its defaults on the old rows, the champion."""
    train, val = train_val(halves()[0])
    first = train_candidates(
        blueprint(), train, val, experiment="continue", settings=settings, candidates=["lightgbm"]
    )
    uri = settings.resolved_tracking_uri
    version = json.loads(register_from_run("penguins", first.run_id, tracking_uri=uri))["version"]
    promote_version("penguins", version, tracking_uri=uri)
    return load_native(f"models:/penguins/{version}", uri), version


def first_trees(model: Pipeline, count: int) -> list:
    return model[-1].booster_.dump_model()["tree_info"][:count]


def test_a_retraining_scores_the_version_continued_and_says_what_it_continued(
    settings, version_one
):
    old_model, version = version_one
    train, val = train_val(halves()[1])
    search = {
        "trials": 0,
        "validation": "holdout",
        "warm_start": "penguins",
        "candidates": ["logistic_regression", "lightgbm"],
    }
    result = train_candidates(
        blueprint(), train, val, experiment="continue", settings=settings, search=search
    )
    names = [candidate.name for candidate in result.candidates]
    assert names[-1] == "lightgbm+continued"  # one more option, after the searched ones
    continued = result.candidates[-1]
    assert continued.metrics["macro_f1"] > 0.5 and continued.run_id
    tag = json.loads(mlflow.MlflowClient().get_run(result.run_id).data.tags[TAG_WARM_START])
    what = tag["continued"]
    assert tag["version"] == f"penguins/{version}" and "not_continued" not in tag
    assert what["candidate"] == "lightgbm+continued" and what["learner"] == "LGBMClassifier"
    assert what["old_rounds"] == 100 and what["added_rounds"] == 50
    assert what["fitted"] == {
        "learner": "LGBMClassifier", "unit": "rounds", "old": 100, "added": 50, "total": 150
    }  # fmt: skip
    assert what["won"] == (result.best_candidate == "lightgbm+continued")
    assert what["val_macro_f1"] == pytest.approx(continued.metrics["macro_f1"])
    params = mlflow.MlflowClient().get_run(continued.run_id).data.params
    assert params["continued.added_rounds"] == "50" and params["continued.from"] == tag["version"]
    # whatever won is served as a plain fitted model, never the continuation's wrapper
    assert not isinstance(result.model, ContinuedModel)


def test_the_continued_booster_keeps_the_old_trees_and_grows_more(version_one):
    old_model, _ = version_one
    train = halves()[1]
    table = blueprint()
    candidate = table.continuation(old_model, train, source="penguins/1")
    # fitted like any candidate at the end of a search (clone, fit, the plain model out)
    model = _refit(table, candidate, {}, train)
    assert isinstance(model, Pipeline) and not isinstance(model, ContinuedModel)
    old_booster, booster = old_model[-1].booster_, model[-1].booster_
    assert (old_booster.current_iteration(), booster.current_iteration()) == (100, 150)
    old_count = len(old_booster.dump_model()["tree_info"])  # 3 classes: 3 trees per round
    assert first_trees(model, old_count) == first_trees(old_model, old_count)
    features = table.features(train)
    # its first 100 rounds predict what the version predicts; all 150 differ (it learned)
    prepared = model[:-1].transform(features)
    at_old = model[-1].predict_proba(prepared, num_iteration=100)
    assert np.allclose(at_old, old_model.predict_proba(features))
    assert not np.allclose(model.predict_proba(features), old_model.predict_proba(features))
    # the version's fitted preprocessing is kept as it was (levels of the old rows)
    assert model[1].levels_ == old_model[1].levels_
    assert old_booster.current_iteration() == 100  # the version's own model is untouched


@pytest.mark.parametrize(
    ("candidate", "count", "unit"), [("random_forest", lambda m: len(m.estimators_), "trees")]
)
def test_a_forest_grows_more_trees_on_the_new_rows(candidate, count, unit):
    table = blueprint()
    old_rows, new_rows = halves()
    old_model = clone(table.candidates(0)[candidate]).fit(
        table.features(old_rows), table.targets(old_rows)
    )
    fitted = clone(table.continuation(old_model, new_rows)).fit(
        table.features(new_rows), table.targets(new_rows)
    )
    assert fitted.summary_ == {
        "learner": "RandomForestClassifier", "unit": unit, "old": 200, "added": 100, "total": 300
    }  # fmt: skip
    model = served(fitted)
    assert count(model[-1]) == 300
    for old_tree, tree in zip(old_model[-1].estimators_, model[-1].estimators_[:200], strict=True):
        assert np.array_equal(old_tree.tree_.threshold, tree.tree_.threshold)
    # back as its params were: a later fit of the served model starts afresh
    assert model[-1].warm_start is False and old_model[-1].n_estimators == 200


def test_xgboost_continues_its_booster_and_keeps_the_string_classes():
    table = blueprint()
    old_rows, new_rows = halves()
    old_model = clone(table.candidates(0)["xgboost"]).set_params(model__n_estimators=20)
    old_model.fit(table.features(old_rows), table.targets(old_rows))
    model = served(
        clone(table.continuation(old_model, new_rows)).fit(
            table.features(new_rows), table.targets(new_rows)
        )
    )
    assert (old_model[-1].fitted_rounds(), model[-1].fitted_rounds()) == (20, 30)
    assert list(model.classes_) == list(old_model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    features = table.features(new_rows)
    prepared = model[:-1].transform(features)
    first = model[-1].predict_proba(prepared, iteration_range=(0, 20))
    assert np.allclose(first, old_model.predict_proba(features), atol=1e-6)
    assert old_model[-1].fitted_rounds() == 20  # the version's own model is untouched


def test_a_histogram_booster_is_not_continued_and_says_why():
    table = blueprint()
    old_rows, new_rows = halves()
    old_model = clone(table.candidates(0)["hist_gradient_boosting"]).set_params(model__max_iter=5)
    old_model.fit(table.features(old_rows), table.targets(old_rows))
    with pytest.raises(CannotContinue, match="bins the rows of every fit afresh"):
        table.continuation(old_model, new_rows)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda frame: frame.drop(columns=["island"]), "columns differ: the new rows lack 'island"),
        (lambda frame: frame[frame["species"] != "Chinstrap"], "classes differ"),
    ],
)
def test_a_version_that_does_not_fit_the_new_rows_is_a_tag_note_not_a_failure(
    settings, version_one, change, reason
):
    train, val = train_val(change(halves()[1]))
    search = {"trials": 0, "validation": "holdout", "warm_start": "penguins/1"}
    result = train_candidates(
        blueprint(), train, val, experiment="continue", settings=settings,
        search=search | {"candidates": ["logistic_regression"]},
    )  # fmt: skip
    assert [candidate.name for candidate in result.candidates] == ["logistic_regression"]
    tag = json.loads(mlflow.MlflowClient().get_run(result.run_id).data.tags[TAG_WARM_START])
    assert reason in tag["not_continued"] and "continued" not in tag
