"""The candidate comparison's scores, order and picture (the logging is an integration test)."""

from __future__ import annotations

import io

from driftloop.training.candidate_plot import candidate_scores, candidates_png, ranked


def test_scores_are_read_under_the_metric_or_a_validation_prefix():
    summary = {
        "candidates": [
            {"name": "ridge", "metrics": {"rmse": 3.5}},
            {"name": "forest", "metrics": {"val_rmse": 2.5}},
            {"name": "lightgbm", "metrics": {"rmse": None}},
            {"name": "broken", "metrics": {}},
        ]
    }
    assert candidate_scores(summary, "rmse") == {"ridge": 3.5, "forest": 2.5}
    assert candidate_scores({}, "rmse") == {}


def test_best_comes_first_in_the_metrics_direction():
    scores = {"a": 0.7, "b": 0.9, "c": 0.7}
    assert list(ranked(scores, greater_is_better=True)) == ["b", "a", "c"]
    assert list(ranked(scores, greater_is_better=False)) == ["a", "c", "b"]  # ties keep order


def test_the_picture_is_a_png_that_grows_with_the_candidates():
    from PIL import Image

    few = Image.open(io.BytesIO(candidates_png({"a": 1.0, "b": 2.0}, "rmse", chosen="a")))
    many = Image.open(
        io.BytesIO(candidates_png({str(i): float(i) for i in range(12)}, "rmse", chosen="3"))
    )
    assert few.format == many.format == "PNG"
    assert many.height > few.height and few.width == many.width
