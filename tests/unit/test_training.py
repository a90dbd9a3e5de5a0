"""Training on the Olist sample: candidates tracked in MLflow, winner quality, evaluation.

One training run (module-scoped, private DRIFTLOOP_HOME and sqlite MLflow,
like the ``home`` fixture) backs the assertions; HPO and file-level steps run
on small candidate sets to stay quick.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.datasets import ingest_to, load_dataset
from driftloop.settings import Settings, get_settings
from driftloop.training.candidates import train_candidates, train_from_files
from driftloop.training.evaluate import evaluate, evaluate_run
from driftloop.training.splits import split_file, split_frame

pytestmark = pytest.mark.slow

QUALITY_FLOOR = 0.90  # macro-F1 on the held-out test split (positive vs negative)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    from mlflow.tracking._tracking_service import utils as tracking

    path = tmp_path_factory.mktemp("driftloop-home")
    saved_global = tracking._tracking_uri  # training sets it; later modules must not see ours
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFTLOOP_HOME", str(path))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        for name in ("DRIFTLOOP_TRACKING_URI", "DRIFTLOOP_STORE_URL", "DRIFTLOOP_API_TOKEN"):
            patch.delenv(name, raising=False)
        get_settings.cache_clear()
        yield path
    tracking._tracking_uri = saved_global
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def trained(module_home, olist_sample):
    frame = load_dataset("olist-reviews", olist_sample)
    splits = split_frame(frame, seed=42)
    settings = Settings(home=module_home)
    fingerprints = {"dataset": "d" * 64, **splits.fingerprints}
    result = train_candidates(
        "sentiment",
        splits.train,
        splits.val,
        seed=42,
        experiment="unit-training",
        settings=settings,
        fingerprints=fingerprints,
    )
    return result, splits, settings


def test_all_candidates_are_child_runs_of_the_winner_run(trained):
    result, splits, _ = trained
    client = mlflow.MlflowClient()
    parent = client.get_run(result.run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert {child.info.run_name for child in children} == {
        "logreg",
        "linear_svc",
        "xgboost",
        "complement_nb",
    }
    for child in children:
        assert {"val_macro_f1", "val_accuracy", "fit_seconds"} <= set(child.data.metrics)
        assert any(key.startswith("classifier__") for key in child.data.params)
    assert {c.run_id for c in result.candidates} == {child.info.run_id for child in children}

    tags = parent.data.tags
    assert tags["driftloop.best_candidate"] == result.best_candidate
    assert tags["driftloop.split.train_fingerprint"] == splits.fingerprints["train"]
    assert tags["driftloop.split.test_fingerprint"] == splits.fingerprints["test"]
    assert tags["driftloop.dataset_fingerprint"] == "d" * 64
    assert parent.data.metrics["val_macro_f1"] == pytest.approx(result.val_metrics["macro_f1"])
    # the winner is the best on validation, up to what one validation row can resolve
    best = max(c.metrics["macro_f1"] for c in result.candidates)
    assert result.val_metrics["macro_f1"] >= best - 1 / len(splits.val)
    assert float(parent.data.params["tie_tolerance"]) == pytest.approx(
        1 / len(splits.val), abs=1e-6
    )
    assert result.model_uri == f"runs:/{result.run_id}/model"
    json.dumps(result.to_dict())  # what the KFP step returns must be JSON


def test_winner_quality_and_invariances_after_a_round_trip_through_mlflow(trained):
    result, splits, _ = trained
    blueprint = get_blueprint("sentiment")
    model = mlflow.sklearn.load_model(result.model_uri)
    assert list(model.classes_) == ["negative", "positive"]
    scores = evaluate(blueprint, model, splits.test)
    print(
        f"\nbest={result.best_candidate} test macro_f1={scores['macro_f1']:.4f} "
        f"accuracy={scores['accuracy']:.4f} (n={len(splits.test)})"
    )
    assert scores["macro_f1"] >= QUALITY_FLOOR
    assert list(model.predict(["produto ótimo, chegou rápido", "não recomendo, péssimo"])) == [
        "positive",
        "negative",
    ]
    # the pyfunc flavour a generic MLflow server uses answers what the predictor does
    pyfunc = mlflow.pyfunc.load_model(result.model_uri)
    answer = pyfunc.predict(pd.DataFrame({"text": ["produto ótimo, chegou rápido"]}))
    assert list(answer.columns) == ["label", "proba_negative", "proba_positive"]
    assert list(answer["label"]) == ["positive"]
    assert answer["proba_positive"].iloc[0] > 0.5


def test_evaluate_run_logs_test_metrics(trained, tmp_path):
    result, splits, settings = trained
    splits.test.to_parquet(tmp_path / "test.parquet")
    scores = evaluate_run(result.run_id, tmp_path / "test.parquet", "sentiment", settings=settings)
    logged = mlflow.MlflowClient().get_run(result.run_id).data.metrics
    assert logged["test_macro_f1"] == pytest.approx(scores["macro_f1"])
    assert logged["test_accuracy"] == pytest.approx(scores["accuracy"])


def test_a_small_optuna_search_is_logged_as_a_child_run(module_home, olist_sample):
    settings = Settings(home=module_home)
    frame = load_dataset("olist-reviews", olist_sample).sort_values("id").iloc[:1200]
    splits = split_frame(frame, seed=3)
    result = train_candidates(
        "sentiment",
        splits.train,
        splits.val,
        seed=3,
        experiment="unit-hpo",
        settings=settings,
        candidates=["logreg", "complement_nb"],
        hpo_trials=4,
    )
    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert {run.info.run_name for run in runs} == {
        "logreg",
        "complement_nb",
        f"hpo-{result.best_candidate}",
    }
    hpo = next(run for run in runs if run.info.run_name.startswith("hpo-"))
    assert len(client.get_metric_history(hpo.info.run_id, "val_macro_f1")) == 4
    untuned = next(c for c in result.candidates if c.name == result.best_candidate)
    # tuned params are only kept when they beat the untuned winner
    assert result.val_metrics["macro_f1"] >= untuned.metrics["macro_f1"]
    if result.tuned_params:
        assert result.val_metrics["macro_f1"] > untuned.metrics["macro_f1"]


def test_train_from_files_returns_json(module_home, olist_sample, tmp_path):
    settings = Settings(home=module_home)
    ingest_to(tmp_path / "data.parquet", "olist-reviews", olist_sample, limit=800)
    fingerprints = split_file(tmp_path / "data.parquet", tmp_path, seed=4)
    summary = train_from_files(
        "sentiment",
        tmp_path / "train.parquet",
        tmp_path / "val.parquet",
        seed=4,
        experiment="unit-files",
        fingerprints=json.dumps(fingerprints),
        settings=settings,
    )
    assert json.loads(json.dumps(summary))["run_id"] == summary["run_id"]
    assert summary["model_uri"] == f"runs:/{summary['run_id']}/model"
    assert len(summary["candidates"]) == 4
    run = mlflow.MlflowClient().get_run(summary["run_id"])
    assert run.data.tags["driftloop.split.val_fingerprint"] == fingerprints["val"]


def test_bad_inputs_fail_before_any_run(trained):
    _, splits, settings = trained
    with pytest.raises(ValueError, match="unknown candidate"):
        train_candidates(
            "sentiment", splits.train, splits.val, settings=settings, candidates=["forest"]
        )
    with pytest.raises(ValueError, match="single class"):
        train_candidates(
            "sentiment",
            splits.train[splits.train.label == "positive"],
            splits.val,
            settings=settings,
        )
    with pytest.raises(ValueError, match="lacks the target column"):
        train_candidates(
            "sentiment", splits.train.drop(columns="label"), splits.val, settings=settings
        )
