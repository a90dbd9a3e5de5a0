"""The training summary's candidate comparison is logged as a PNG with the registered version.

The pipeline's own steps (``pipeline_steps.run_until_registered``: ingest -> ... ->
register, each component's function in process) train two fast tabular candidates
on penguins; the register step draws the candidates' validation scores and logs
``training/candidates.png`` on the run whose model the version is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.integration.pipeline_steps import run_until_registered

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "penguins-plotted"
SEARCH = json.dumps({"candidates": ["logistic_regression", "random_forest"], "trials": 0})


def test_the_registered_versions_run_carries_the_candidate_plot(home, tmp_path):
    from mlflow import MlflowClient
    from PIL import Image

    from driftloop.blueprints import get_blueprint
    from driftloop.registry import ModelRegistry
    from driftloop.training.candidate_plot import PLOT_ARTIFACT, SUMMARY_ARTIFACT, candidate_scores

    blueprint, dataset, _ = get_blueprint("tabular").prepare("penguins", None)
    source = tmp_path / "penguins.csv"
    blueprint.load(dataset, None).drop(columns=["id"]).to_csv(source, index=False)
    run = run_until_registered(
        tmp_path / "steps",
        blueprint=blueprint.spec.to_text(),
        model_name=MODEL,
        data_source=str(source),
        search=SEARCH,
    )
    version = ModelRegistry().get_version(MODEL, run.outputs["version"])
    assert version.run_id == run.outputs["run_id"]

    client = MlflowClient()
    listed = {a.path for a in client.list_artifacts(version.run_id, "training")}
    assert {SUMMARY_ARTIFACT, PLOT_ARTIFACT} <= listed
    png = client.download_artifacts(version.run_id, PLOT_ARTIFACT, str(tmp_path))
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 150
        pixels = np.asarray(image.convert("RGB"))
    summary_path = client.download_artifacts(version.run_id, SUMMARY_ARTIFACT, str(tmp_path))
    summary = json.loads(Path(summary_path).read_text())
    scores = candidate_scores(summary, get_blueprint(blueprint.spec).primary_metric)
    assert set(scores) >= {"logistic_regression", "random_forest"}
    # the chosen candidate's bar is drawn in its own green (#2ca02c), the others in blue
    assert (np.abs(pixels.astype(int) - (44, 160, 44)).sum(axis=2) < 10).sum() > 200
    assert (np.abs(pixels.astype(int) - (31, 119, 180)).sum(axis=2) < 10).sum() > 200
