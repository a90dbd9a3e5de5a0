import io

from rich.console import Console

from driftloop.cli.train import render_summary


def summary(best: str) -> dict:
    return {
        "primary_metric": "macro_f1",
        "best_candidate": best,
        "candidates": [
            {"name": "linear_svc", "metrics": {"macro_f1": 0.9454}, "fit_seconds": 0.5},
            {"name": "complement_nb", "metrics": {"macro_f1": 0.9480}, "fit_seconds": 0.4},
        ],
        "test_metrics": {"macro_f1": 0.92},
        "version": "1",
        "decision": "promote",
        "reason": "first model",
        "aliases": ["champion"],
        "run_id": "abc123",
        "run_dir": "/tmp/run",
    }


def rendered(best: str) -> str:
    out = io.StringIO()
    render_summary(Console(file=out, width=200), summary(best), "sentiment")
    return out.getvalue()


def test_a_chosen_candidate_below_the_top_score_is_explained_as_a_near_tie():
    text = rendered("linear_svc")
    assert "linear_svc chosen over complement_nb (0.9480)" in text
    assert "near-tie" in text


def test_no_explanation_when_the_top_score_is_chosen():
    assert "near-tie" not in rendered("complement_nb")


def test_the_summary_shows_the_fallback_the_version_registered(tmp_path):
    """The evaluate step replaced the train step's choice (lstm) by persistence: the
    summary, read from a real MLflow registry, says what was registered and why."""
    import json

    import mlflow
    from pipelines.local_run import LocalRunResult, TaskRecord

    from driftloop.cli.train import summarize
    from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_FALLBACK, TAG_FALLBACK_REPLACED

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("forecast", artifact_location=tmp_path.as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.set_tag(run_id, TAG_BEST_CANDIDATE, "persistence")  # as the evaluate step leaves it
    client.create_registered_model("msft-forecast")
    reason = "lstm has MASE 1.0312 against persistence on the test days (needs MASE < 1)"
    version = client.create_model_version(
        "msft-forecast", f"{tmp_path.as_uri()}/model", run_id=run_id,
        tags={TAG_FALLBACK: reason, TAG_FALLBACK_REPLACED: "lstm"},
    ).version  # fmt: skip
    trained = {"best_candidate": "lstm", "candidates": [
        {"name": "persistence", "metrics": {"mase": 1.0}},
        {"name": "lstm", "metrics": {"mase": 0.97}},
    ]}  # fmt: skip
    result = LocalRunResult(
        pipeline="training", run_id="local-1", run_dir=tmp_path, log_path=tmp_path / "log",
        status="SUCCESS", seconds=1.0,
        tasks={
            "train": TaskRecord("train", outputs={"summary": json.dumps(trained),
                                                  "run_id": run_id}),
            "evaluate": TaskRecord("evaluate", outputs={"Output": json.dumps({"mase": 1.0})}),
            "register": TaskRecord("register", outputs={"Output": str(version)}),
        },
    )  # fmt: skip
    facts = summarize(result, "msft-forecast", "mase", uri)
    assert facts["fallback"] == {"registered": "persistence", "replaced": "lstm", "reason": reason}
    out = io.StringIO()
    render_summary(Console(file=out, width=250), facts, "msft-forecast", greater_is_better=False)
    text = out.getvalue()
    assert f"persistence in place of lstm: {reason}" in text
    assert "registered (fallback)" in text and "chosen, replaced at test" in text
    assert "chosen, replaced" not in rendered("linear_svc")  # no fallback: as before
