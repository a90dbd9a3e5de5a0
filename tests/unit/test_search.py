"""The search over all candidates: samplers, Hyperband on staged scores, MLflow and storage.

Real Optuna studies in a SQLite storage, real MLflow (SQLite in tmp_path), a
generated 200-row table and a cheap two-candidate blueprint (``search_fixtures``).
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import optuna
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import ComplementNB

from driftloop.blueprints.base import ParamChoice, ParamRange
from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.tabular.blueprint import table_pipeline
from driftloop.lineage import TAG_SEARCH, TAG_TRIAL_STATE, TAG_VALIDATION, TAG_VALIDATION_REASON
from driftloop.training.candidates import champion_search, train_candidates
from driftloop.training.search import (
    StudySettings,
    grid_of,
    search_candidate,
    storage_url,
    suggest,
)
from driftloop.training.staged import evaluate, staging_of
from driftloop.training.validation import choose_validation, folds_of
from tests.unit.search_fixtures import SmallTable, small_table, train_val

TRIALS = 16


def test_grid_is_a_finite_discretisation_of_the_space():
    grid = grid_of(
        {
            "c": ParamRange(0.01, 100.0, log=True),
            "rate": ParamRange(0.0, 0.3),
            "leaves": ParamRange(1, 20, integer=True),
            "depth": ParamChoice((None, 4, 8)),
        }
    )
    assert grid["c"] == pytest.approx([0.01, 0.215443, 4.641589, 100.0], rel=1e-5)  # log-spaced
    assert grid["rate"] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert grid["leaves"] == [1, 7, 14, 20]  # integers subsampled, ends kept
    assert grid["depth"] == [None, 4, 8]


def test_stages_follow_what_the_estimator_can_do():
    def kind(estimator, folds=1):
        staging = staging_of(table_pipeline(estimator), folds=folds)
        return staging.kind, staging.parameter, staging.values

    assert kind(RandomForestClassifier(n_estimators=200)) == (
        "warm_start",
        "model__n_estimators",
        (25, 50, 100, 200),
    )
    assert kind(HistGradientBoostingClassifier())[:2] == ("warm_start", "model__max_iter")
    assert kind(StringLabelXGBClassifier(n_estimators=40))[0] == "staged_predict"
    assert kind(StringLabelXGBClassifier(n_estimators=40), folds=5)[0] == "folds"
    assert kind(RandomForestClassifier(), folds=5)[0] == "warm_start"  # grows across folds
    assert kind(SGDClassifier())[0] == "partial_fit"
    assert kind(ComplementNB())[0] == "partial_fit"
    assert kind(LogisticRegression()) == ("single", None, ())
    assert kind(LogisticRegression(), folds=5)[0] == "folds"


@pytest.mark.slow
def test_staged_boosting_rounds_report_one_score_per_stage():
    table = SmallTable()
    train, val = train_val(small_table(160))
    folds = folds_of(choose_validation("holdout", table, 160), table, train, val, seed=0)
    reported = []
    template = table_pipeline(StringLabelXGBClassifier(n_estimators=16, max_depth=2, n_jobs=1))
    metrics = evaluate(template, table, folds, report=lambda v, s: reported.append((s, v)))
    assert [step for step, _ in reported] == [1, 2, 3, 4]
    assert metrics["macro_f1"] == reported[-1][1]
    assert len({round(v, 6) for _, v in reported}) > 1  # 2, 4, 8, 16 rounds score differently


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One MLflow database and one DRIFTLOOP_HOME for the module (creating one takes seconds)."""
    from driftloop.settings import Settings

    home = tmp_path_factory.mktemp("search-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        patch.delenv("DRIFTLOOP_TRACKING_URI", raising=False)
        patch.delenv("DRIFTLOOP_OPTUNA_STORAGE", raising=False)
        yield Settings(home=home)


def _study(settings, sampler, *, trials, candidate="forest", seed=7, tag=""):
    table = SmallTable()
    train, val = train_val(small_table())
    folds = folds_of(choose_validation("holdout", table, 200), table, train, val, seed=0)
    storage = storage_url(settings)
    mlflow.set_tracking_uri(settings.resolved_tracking_uri)
    experiment = mlflow.create_experiment(
        f"samplers-{sampler}{tag}", (settings.home / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        found = search_candidate(
            table,
            candidate,
            table.candidates(seed)[candidate],
            folds,
            StudySettings(
                storage=storage,
                study_name=f"s-{sampler}-{candidate}{tag}",
                experiment_id=experiment,
                sampler=sampler,
                pruner="none",
                n_trials=trials,
                seed=seed,
            ),
        )
    return found, optuna.load_study(study_name=found.study_name, storage=storage), table


@pytest.mark.slow
def test_each_sampler_runs_as_asked(tracking):
    # grid: the sgd space (alpha, log range) is a 4-point grid; 6 trials asked, 4 exist
    found, study, table = _study(tracking, "grid", trials=6, candidate="sgd")
    assert study.user_attrs["sampler"] == "GridSampler"
    tried = sorted(t.params["model__alpha"] for t in study.trials)
    assert tried == pytest.approx(grid_of(table.tuning_space("sgd"))["model__alpha"])
    assert found.complete + found.pruned == 4

    # random: the trials are exactly RandomSampler(seed)'s draws, in order
    found, study, table = _study(tracking, "random", trials=4)
    assert study.user_attrs["sampler"] == "RandomSampler"
    replay = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    space = table.tuning_space("forest")
    for trial in study.trials:
        again = replay.ask()
        assert {key: suggest(again, key, entry) for key, entry in space.items()} == trial.params
        replay.tell(again, 0.0)

    # tpe: the default, seeded (the same seed draws the same trials)
    found, study, _ = _study(tracking, "tpe", trials=3, candidate="sgd")
    assert study.user_attrs["sampler"] == "TPESampler"
    _, again, _ = _study(tracking, "tpe", trials=3, candidate="sgd", tag="-again")
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


@pytest.fixture(scope="module")
def searched(tracking):
    """One real search over both candidates: TPE + Hyperband on the holdout."""
    train, val = train_val(small_table())
    search = {"trials": TRIALS, "validation": "holdout", "sampler": "tpe", "pruner": "hyperband"}
    result = train_candidates(
        SmallTable(),
        train,
        val,
        seed=5,
        experiment="search",
        settings=tracking,
        search=search,
        dataset="small",
        data_source="/data/small.csv",
    )
    return result, tracking, train, val


@pytest.mark.slow
def test_hyperband_prunes_trials_of_a_real_search(searched):
    result, settings, _, _ = searched
    storage = storage_url(settings)
    pruned = 0
    for name in result.search["studies"]:
        study = optuna.load_study(study_name=name, storage=storage)
        assert study.user_attrs["pruner"] == "HyperbandPruner"
        states = [t.state for t in study.trials]
        pruned += states.count(optuna.trial.TrialState.PRUNED)
        assert states.count(optuna.trial.TrialState.COMPLETE) > 0
        for trial in study.trials:
            if trial.state == optuna.trial.TrialState.PRUNED:  # stopped before the last stage
                assert max(trial.intermediate_values) < study.user_attrs["stages"]
    print(f"\npruned {pruned} of {TRIALS} trials")
    assert pruned > 0
    assert sum(s["pruned"] for s in result.search["searches"]) == pruned


@pytest.mark.slow
def test_trials_are_nested_runs_with_intermediate_values_and_state(searched):
    result, _, _, _ = searched
    client = mlflow.MlflowClient()
    candidate_runs = {c.name: c.run_id for c in result.candidates}
    assert set(candidate_runs) == {"sgd", "forest"}  # the search spans every candidate
    states = []
    for name, run_id in candidate_runs.items():
        trials = client.search_runs(
            [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
        )
        assert len(trials) == TRIALS // 2  # the budget is shared by the two candidates
        for trial in trials:
            state = trial.data.tags[TAG_TRIAL_STATE]
            states.append(state)
            history = client.get_metric_history(trial.info.run_id, "intermediate_macro_f1")
            assert [m.step for m in sorted(history, key=lambda m: m.step)][0] == 1
            assert set(trial.data.params) == set(SmallTable().tuning_space(name))
            if state == "complete":
                assert "val_macro_f1" in trial.data.metrics
                assert trial.info.status == "FINISHED"
            else:
                assert state == "pruned" and trial.info.status == "KILLED"
    assert "pruned" in states and "complete" in states


@pytest.mark.slow
def test_the_run_records_validation_storage_and_dataset_inputs(searched):
    result, settings, train, val = searched
    run = mlflow.MlflowClient().get_run(result.run_id)
    tags = run.data.tags
    assert tags[TAG_VALIDATION] == "holdout"
    assert tags[TAG_VALIDATION_REASON].startswith("--validation")
    assert tags["driftloop.search.optuna_storage"] == storage_url(settings)
    assert tags["driftloop.search.optuna_studies"].split(",") == result.search["studies"]
    assert json.loads(tags[TAG_SEARCH])["trials"] == TRIALS
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"small-train", "small-val"}
    contexts = {
        name: [t.value for t in d.tags if t.key == "mlflow.data.context"]
        for name, d in inputs.items()
    }
    assert contexts == {"small-train": ["training"], "small-val": ["validation"]}
    assert json.loads(inputs["small-train"].dataset.source) == {"uri": "/data/small.csv"}
    assert inputs["small-train"].dataset.digest != inputs["small-val"].dataset.digest
    assert "x0" in inputs["small-train"].dataset.schema


@pytest.mark.slow
def test_the_version_carries_the_search_and_a_retraining_reuses_it(searched):
    from driftloop.registry import ModelRegistry, register_from_run

    result, settings, _, _ = searched
    uri = settings.resolved_tracking_uri
    version = json.loads(register_from_run("small", result.run_id, "{}", tracking_uri=uri))
    registry = ModelRegistry(uri)
    tags = registry.get_version("small", version["version"]).tags
    assert tags[TAG_VALIDATION] == "holdout" and tags[TAG_VALIDATION_REASON]
    assert json.loads(tags[TAG_SEARCH])["pruner"] == "hyperband"
    assert champion_search("small", settings) == ""  # no champion yet
    registry.set_alias("small", "champion", version["version"])
    assert json.loads(champion_search("small", settings)) == json.loads(tags[TAG_SEARCH])


@pytest.mark.slow
def test_kfold_scores_by_cv_and_refits_the_winner_on_train_and_val(searched):
    result, settings, train, val = searched
    cv = train_candidates(
        SmallTable(),
        train,
        val,
        seed=5,
        experiment="search-kfold",
        settings=settings,
        search={"trials": 2, "validation": "kfold", "folds": 3, "candidates": ["sgd"]},
    )
    tags = mlflow.MlflowClient().get_run(cv.run_id).data.tags
    assert tags[TAG_VALIDATION] == "stratified-kfold" and tags["driftloop.validation.folds"] == "3"
    learner = cv.model.steps[-1][1]
    assert (learner.t_ - 1) / learner.n_iter_ == len(train) + len(val)  # refit on both


@pytest.mark.slow
def test_a_budget_too_small_for_one_trial_names_time_budget(searched):
    _, settings, train, val = searched
    with pytest.raises(ValueError, match=r"^--time-budget: 0\.001 s is too small for one trial"):
        train_candidates(
            SmallTable(),
            train,
            val,
            experiment="search-budget",
            settings=settings,
            search={"trials": 4, "time_budget_s": 0.001, "validation": "holdout"},
        )


@pytest.mark.slow
def test_preset_best_offers_ensembles_and_keeps_one_only_if_it_wins(searched):
    _, settings, train, val = searched
    best = train_candidates(
        SmallTable(),
        train,
        val,
        seed=5,
        experiment="search-best",
        settings=settings,
        search={"preset": "best", "trials": 2, "time_budget_s": 120, "folds": 3},
    )
    client = mlflow.MlflowClient()
    run = client.get_run(best.run_id)
    assert run.data.tags[TAG_VALIDATION] == "stratified-kfold"  # auto: 200 rows < 1000
    assert run.data.tags[TAG_VALIDATION_REASON].startswith("auto: 200 train+validation rows")
    ensembles = {k: v for k, v in run.data.metrics.items() if k.startswith("ensemble_")}
    assert ensembles, "preset best offered no ensemble"
    kept = run.data.tags["driftloop.ensemble"]
    singles = [c.metrics["macro_f1"] for c in best.candidates if c.name in ("sgd", "forest")]
    if kept != "none won":
        assert best.best_candidate == kept
        assert ensembles[f"ensemble_{kept}_val_macro_f1"] == max(ensembles.values())
    else:
        assert best.best_candidate in ("sgd", "forest")
    assert np.isfinite(singles).all()
