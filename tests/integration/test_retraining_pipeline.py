"""The retraining pipeline through kfp.local: roll back, or retrain with feedback from the store.

The registry is a real MLflow SQLite registry; the champions registered up
front are real (small) sklearn text pipelines; the feedback rows go into a
real SQLite prediction store through PredictionStore.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

MODEL = "sentiment"
TEXTS = [
    "produto excelente chegou rápido",
    "adorei recomendo muito",
    "ótima qualidade",
    "produto horrível não funciona",
    "péssimo atendimento nunca chegou",
    "odiei quebrado",
]
LABELS = ["positive", "positive", "positive", "negative", "negative", "negative"]


def _register_small_champion(settings, texts=TEXTS, labels=LABELS) -> str:
    """Log a real TF-IDF + logistic-regression pipeline and make it the champion."""
    import mlflow
    import mlflow.sklearn
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from driftloop.registry import ModelRegistry

    uri = settings.resolved_tracking_uri
    mlflow.set_tracking_uri(uri)
    model = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())])
    model.fit(texts, labels)
    mlflow.set_experiment("retraining-test")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    registry = ModelRegistry(uri)
    version = registry.register(MODEL, run.info.run_id, {"driftloop.test": "small"})
    registry.promote(MODEL, version)
    return version


def _add_feedback(settings, count: int) -> None:
    from driftloop.store import PredictionRecord, PredictionStore

    store = PredictionStore(settings.resolved_store_url)
    try:
        records = [
            PredictionRecord(
                request_id=f"req-{i:04d}",
                model_name=MODEL,
                model_version="1",
                inputs=[f"{TEXTS[i % len(TEXTS)]} pedido {i}"],
                outputs=[{"label": "positive", "probabilities": {"positive": 0.6}}],
                label="positive",
                confidence=0.6,
            )
            for i in range(count)
        ]
        store.insert_predictions(records)
        for i in range(count):
            store.add_feedback(f"req-{i:04d}", label=LABELS[i % len(LABELS)], correct=None)
    finally:
        store.close()


@pytest.mark.slow
def test_accuracy_drop_right_after_a_promotion_rolls_back(home, settings):
    from pipelines.local_run import run_pipeline_locally
    from pipelines.retraining import retraining_pipeline

    from driftloop.registry import ModelRegistry

    first = _register_small_champion(settings)
    second = _register_small_champion(settings)
    result = run_pipeline_locally(
        retraining_pipeline,
        {"model_name": MODEL, "reason": "LiveScoreDrop", "rollback_window_hours": 1.0},
        settings,
    )
    assert result.succeeded, result.error
    assert result.output("rollback") == "rolled_back"
    assert list(result.timings) == ["rollback"]  # nothing was trained
    report = result.artifact_json("rollback", "report")
    assert report["champion"] == first and report["demoted"] == second
    aliases = ModelRegistry(settings.resolved_tracking_uri).aliases(MODEL)
    assert aliases["champion"] == first
    assert "previous-champion" not in aliases


@pytest.mark.slow
def test_drift_alert_retrains_on_data_plus_feedback(home, settings, olist_sample):
    from pipelines.local_run import run_pipeline_locally
    from pipelines.retraining import retraining_pipeline

    from driftloop.registry import ModelRegistry

    _register_small_champion(settings)
    _add_feedback(settings, 24)
    events = []
    result = run_pipeline_locally(
        retraining_pipeline,
        {
            "model_name": MODEL,
            "reason": "DriftDetected",
            "dataset": "olist-reviews",
            "data_source": str(olist_sample),
        },
        settings,
        progress=events.append,
    )
    assert result.succeeded, f"{result.failed_task}: {result.error}"
    print("\nretraining task timings (s):", result.timings)
    assert result.output("rollback") == "retrain"
    assert "not a rollback case" in result.artifact_json("rollback", "report")["why"]

    merged = result.json_output("merge-feedback")
    assert merged["feedback_rows"] == 24
    ingested = result.json_output("ingest")
    assert merged["rows"] == ingested["rows"] + 24
    split = result.json_output("split", "fingerprints")
    # the lineage names the merged data, feedback included
    assert split["dataset"] == merged["fingerprint"] != ingested["fingerprint"]

    # the small champion was trained on six sentences: the challenger must win
    assert result.output("gate") == "promote"
    version = result.output("register")
    registry = ModelRegistry(settings.resolved_tracking_uri)
    assert registry.aliases(MODEL) == {"champion": version, "previous-champion": "1"}
    tags = registry.get_version(MODEL, version).tags
    assert tags["driftloop.dataset_fingerprint"] == merged["fingerprint"]
    assert tags["driftloop.decision"] == "promote"
    assert tags.get("driftloop.drift_reference")
    started = [e.task for e in events if e.kind == "started"]
    assert started[:3] == ["rollback", "ingest", "merge-feedback"]
    assert started[-1] == "promote"
    assert all(e.status == "SUCCESS" for e in events if e.kind == "finished")


def _split_ids(result, split: str) -> set[str]:
    from pathlib import Path

    import pandas as pd

    uri = result.tasks["split"].artifacts[split]
    return set(pd.read_parquet(Path(uri.removeprefix("file://")), columns=["id"])["id"])


@pytest.mark.slow
def test_retraining_never_scores_the_champion_on_rows_it_trained_on(home, settings, olist_sample):
    from pipelines.local_run import run_pipeline_locally
    from pipelines.retraining import retraining_pipeline
    from pipelines.training import training_pipeline

    from driftloop.registry import ModelRegistry

    data = {"dataset": "olist-reviews", "data_source": str(olist_sample)}
    trained = run_pipeline_locally(training_pipeline, {"model_name": MODEL, **data}, settings)
    assert trained.succeeded, f"{trained.failed_task}: {trained.error}"
    assert trained.output("gate") == "promote"
    _add_feedback(settings, 24)

    retrained = run_pipeline_locally(
        retraining_pipeline, {"model_name": MODEL, "reason": "DriftDetected", **data}, settings
    )
    assert retrained.succeeded, f"{retrained.failed_task}: {retrained.error}"

    champion_saw = _split_ids(trained, "train") | _split_ids(trained, "val")
    gate_test = _split_ids(retrained, "test")  # the artifact the gate step reads
    print(
        f"\nchampion trained/selected on {len(champion_saw)} rows; gate test split "
        f"{len(gate_test)} rows, {len(champion_saw & gate_test)} of them the champion's; "
        f"gate: {retrained.output('gate')}"
    )
    assert champion_saw.isdisjoint(gate_test)
    assert _split_ids(trained, "test") <= gate_test
    feedback_ids = {f"req-{i:04d}" for i in range(24)}
    assert feedback_ids & gate_test  # feedback rows join the test split by their own ids
    assert feedback_ids <= gate_test | _split_ids(retrained, "train") | _split_ids(retrained, "val")
    tags = (
        ModelRegistry(settings.resolved_tracking_uri)
        .get_version(MODEL, retrained.output("register"))
        .tags
    )
    assert tags["driftloop.rescored"] == "true"  # the feedback changed the test split
    assert tags["driftloop.decision.excluded_rows"] == "0"
    assert tags["driftloop.decision.test_rows"] == str(len(gate_test))
    assert tags["driftloop.split.scheme"] == "id-sha256/v1 seed=42 test=0.2 val=0.1"


def test_unknown_pipeline_argument_is_rejected_before_anything_runs(home, settings):
    from pipelines.local_run import run_pipeline_locally
    from pipelines.retraining import retraining_pipeline

    with pytest.raises(TypeError, match="no_such_parameter"):
        run_pipeline_locally(retraining_pipeline, {"no_such_parameter": 1}, settings)
    # the registry was never touched
    assert not (home / "mlflow.db").exists()
