"""Retraining from a registered version: its tuned hyperparameters start the new search.

Real MLflow (sqlite under tmp), real registry, real Optuna studies, the small
two-candidate table of the search tests (a few seconds).
"""

from __future__ import annotations

import json

import mlflow
import optuna
import pytest

from driftloop.registry import ModelRegistry, promote_version, register_from_run
from driftloop.training.candidates import train_candidates
from driftloop.training.presets import SearchSettings
from driftloop.training.search import storage_url, warm_params
from driftloop.training.warm_start import TAG_WARM_START, resolve
from tests.unit.search_fixtures import SmallTable, own_registry_settings, small_table, train_val


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    with own_registry_settings(tmp_path_factory, "warm-home") as settings:
        yield settings


@pytest.fixture(scope="module")
def champion(settings):
    """Version 1 of ``warm``: the forest, its search settled on depth 4, min leaf 7."""
    train, val = train_val(small_table())
    first = train_candidates(
        SmallTable(), train, val, experiment="warm", settings=settings, candidates=["forest"]
    )
    # what a search that tuned the forest logs on the training run (train_candidates'
    # ``tuned.*`` params); set here so that the test does not hang on a search's luck
    client = mlflow.MlflowClient(settings.resolved_tracking_uri)
    client.log_param(first.run_id, "tuned.model__max_depth", "4")
    client.log_param(first.run_id, "tuned.model__min_samples_leaf", "7")
    uri = settings.resolved_tracking_uri
    version = json.loads(register_from_run("warm", first.run_id, tracking_uri=uri))["version"]
    promote_version("warm", version, tracking_uri=uri)
    return version


def test_warm_params_fit_the_space_they_start():
    space = SmallTable().tuning_space("forest")
    given = {"model__max_depth": "None", "model__min_samples_leaf": "99", "model__gone": "1"}
    # text back to the space's values, a number clipped into its range, unknown keys dropped
    assert warm_params(space, given) == {"model__max_depth": None, "model__min_samples_leaf": 20}


@pytest.mark.slow
def test_the_champion_is_read_for_its_candidate_and_tuned_params(settings, champion):
    found = resolve("warm@champion", "tabular", settings)
    assert found.version == f"warm/{champion}" and found.candidate == "forest"
    assert found.params == {"model__max_depth": "4", "model__min_samples_leaf": "7"}
    # the params as a trial of the forest's space takes them (text back to its values)
    space = SmallTable().tuning_space("forest")
    assert warm_params(space, found.params) == {"model__max_depth": 4, "model__min_samples_leaf": 7}


@pytest.mark.slow
def test_a_retraining_starts_its_search_from_the_champion_and_records_it(settings, champion):
    train, val = train_val(small_table(seed=1))  # fresher rows
    search = {"trials": 2, "validation": "holdout", "warm_start": "warm"}  # bare name: champion
    result = train_candidates(
        SmallTable(), train, val, experiment="warm", settings=settings, search=search
    )
    forest = next(s for s in result.search["searches"] if s["candidate"] == "forest")
    study = optuna.load_study(study_name=forest["study"], storage=storage_url(settings))
    first = min(study.trials, key=lambda trial: trial.number)
    assert first.params == {"model__max_depth": 4, "model__min_samples_leaf": 7}
    assert study.user_attrs["warm_start_params"] == first.params
    # lineage: on the run, and carried onto the version registered from it
    tag = mlflow.MlflowClient().get_run(result.run_id).data.tags[TAG_WARM_START]
    assert json.loads(tag)["version"] == f"warm/{champion}"
    # the champion's fitted forest itself, grown on the fresher rows, is one more candidate
    assert json.loads(tag)["continued"]["candidate"] == "forest+continued"
    assert "forest+continued" in [candidate.name for candidate in result.candidates]
    assert forest["candidate"] == "forest" and len(result.search["searches"]) == 2
    uri = settings.resolved_tracking_uri
    version = json.loads(register_from_run("warm", result.run_id, tracking_uri=uri))["version"]
    carried = ModelRegistry(uri).get_version("warm", version).tags[TAG_WARM_START]
    assert json.loads(carried)["candidate"] == "forest"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("nobody", "^--warm-start: .*nobody"),
        ("warm/99", "^--warm-start: .*99"),
        ("warm@nosuch", "^--warm-start: unknown alias 'nosuch'"),
    ],
)
def test_a_bad_reference_is_one_line_naming_the_option(settings, champion, reference, message):
    table = SmallTable()
    with pytest.raises(ValueError, match=message) as caught:
        SearchSettings(trials=2, warm_start=reference).plan(table, table.candidates(0))
    assert "\n" not in str(caught.value)
