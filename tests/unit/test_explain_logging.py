"""Global importance logged on a training run (real MLflow, sqlite in tmp_path): the table is
per input column (one-hot features summed back), the plot is a PNG, the background an explainer
needs is logged and reads back to the same explanations; a text model's importance is per word;
an explainer that fails leaves the run without explanations and says why."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from driftloop.blueprints import get_blueprint
from driftloop.training.explain import (
    ARTIFACT_DIR,
    MAX_ROWS,
    load_background,
    log_global_importance,
)
from tests.integration.conftest_serving import (
    NEGATIVE,
    POSITIVE,
    table_frame,
    train_text_model,
)
from tests.unit.test_explain import fitted

pytestmark = pytest.mark.slow  # an MLflow sqlite database per module (~5 s)


@pytest.fixture(scope="module")
def mlflow_client(tmp_path_factory):
    home = tmp_path_factory.mktemp("explain-mlflow")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("explain", artifact_location=(home / "art").as_uri())
    return client, experiment, uri


def artifacts(client, run_id: str) -> set[str]:
    return {info.path for info in client.list_artifacts(run_id, ARTIFACT_DIR)}


def test_table_importance_is_per_input_column_with_plot_and_background(mlflow_client, tmp_path):
    client, experiment, uri = mlflow_client
    blueprint, model, features = fitted("penguins", "species", "logistic_regression")
    frame, _ = table_frame("penguins")
    frame = blueprint._labelled(frame)
    run_id = client.create_run(experiment).info.run_id

    result = log_global_importance(run_id, blueprint, model, frame, client=client)

    assert result is not None and result.method == "linear SHAP"
    assert result.rows == min(MAX_ROWS, len(frame))
    assert set(result.table["feature"]) == set(features.columns)  # "island", not "island_Biscoe"
    assert (result.table["mean_abs_contribution"].diff().dropna() <= 0).all()
    names = {path.rsplit("/", 1)[-1] for path in artifacts(client, run_id)}
    assert names == {"importance.json", "importance.csv", "importance.png", "background.json"}
    local = client.download_artifacts(run_id, ARTIFACT_DIR, str(tmp_path))
    document = json.loads((tmp_path / ARTIFACT_DIR / "importance.json").read_text())
    assert document["method"] == "linear SHAP" and document["rows"] == result.rows
    assert [f["feature"] for f in document["features"]] == list(result.table["feature"])
    csv = pd.read_csv(f"{local}/importance.csv")
    np.testing.assert_allclose(
        csv["mean_abs_contribution"], result.table["mean_abs_contribution"], rtol=1e-9
    )
    assert (tmp_path / ARTIFACT_DIR / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the predictor's explainer, built from the logged background, explains as training did
    background = load_background(run_id, uri)
    assert list(background.columns) == list(features.columns) and len(background) == 100
    rows = features.iloc[5:9]
    labels = [str(label) for label in model.predict(rows)]
    served = blueprint.explainer(model, background).explain(rows, labels)
    trained = blueprint.explainer(model, result.background).explain(rows, labels)
    for a, b in zip(served, trained, strict=True):
        np.testing.assert_allclose(a.contributions, b.contributions, rtol=1e-9, atol=1e-12)


def test_text_importance_is_per_word_and_needs_no_background(mlflow_client):
    client, experiment, uri = mlflow_client
    model = train_text_model()
    frame = pd.DataFrame(
        {"text": POSITIVE + NEGATIVE, "label": ["positive"] * 8 + ["negative"] * 8}
    )
    run_id = client.create_run(experiment).info.run_id
    result = log_global_importance(run_id, get_blueprint("sentiment"), model, frame, client=client)
    assert result.method == "permutation SHAP over words"
    words = {w for text in frame["text"] for w in text.lower().replace(",", " ").split()}
    assert set(result.table["feature"]) <= words
    assert len(result.table) == 30  # the top words only
    assert load_background(run_id, uri) is None
    assert {p.rsplit("/", 1)[-1] for p in artifacts(client, run_id)} == {
        "importance.json",
        "importance.csv",
        "importance.png",
    }


def test_a_failing_explainer_leaves_the_run_as_it_was(mlflow_client, caplog):
    client, experiment, _ = mlflow_client
    blueprint, model, _ = fitted("penguins", "species", "logistic_regression")
    run_id = client.create_run(experiment).info.run_id
    broken = pd.DataFrame({"species": ["Adelie"], "island": ["Biscoe"]})  # columns missing
    with caplog.at_level(logging.WARNING, logger="driftloop.training.explain"):
        assert log_global_importance(run_id, blueprint, model, broken, client=client) is None
    assert f"no global importance for run {run_id}" in caplog.text
    assert artifacts(client, run_id) == set()
