"""The pieces of the stability analysis that need no registry (``training.stability``).

The command end to end, with a real MLflow registry, is
``tests/integration/test_report_stability.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge, SGDRegressor

from driftloop.blueprints import ParamChoice, ParamRange, get_blueprint
from driftloop.blueprints.tabular.blueprint import table_pipeline
from driftloop.training.stability import (
    StabilityError,
    StabilityReport,
    VersionReference,
    analyse,
    choose_param,
    plot,
    resampled_splits,
    sweep_values,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iris", VersionReference("iris", alias="champion")),
        ("iris@challenger", VersionReference("iris", alias="challenger")),
        ("iris/3", VersionReference("iris", version="3")),
        ("team/iris/12", VersionReference("team/iris", version="12")),
    ],
)
def test_version_references(text, expected):
    assert VersionReference.parse(text) == expected


@pytest.mark.parametrize("text", ["iris@", "@champion", "iris/latest", "iris/", ""])
def test_bad_references_name_the_argument(text):
    with pytest.raises(StabilityError, match="^NAME: "):
        VersionReference.parse(text)


def test_sweep_values():
    log_range = ParamRange(0.01, 100.0, log=True)
    assert sweep_values(log_range, 5) == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    # the version's own value joins the sweep where it is not a point already
    assert sweep_values(log_range, 3, current=4.0) == pytest.approx([0.01, 1.0, 4.0, 100.0])
    assert sweep_values(log_range, 3, current=1.0) == pytest.approx([0.01, 1.0, 100.0])
    assert sweep_values(log_range, 3, current=500.0) == pytest.approx([0.01, 1.0, 100.0])
    assert sweep_values(ParamRange(2, 8, integer=True), 5) == [2, 4, 5, 6, 8]
    assert sweep_values(ParamRange(1, 3, integer=True), 7) == [1, 2, 3]
    assert sweep_values(ParamChoice((None, 4, 8)), 5) == [None, 4, 8]


def test_choose_param():
    space = {
        "model__max_depth": ParamChoice((None, 4)),
        "model__learning_rate": ParamRange(0.02, 0.3, log=True),
        "prepare__learning_rate": ParamRange(0.1, 0.2),
    }
    # default: the first numeric range, not the first entry
    assert choose_param(space, None, "gbm")[0] == "model__learning_rate"
    assert choose_param(space, "max_depth", "gbm")[0] == "model__max_depth"
    assert choose_param(space, "prepare__learning_rate", "gbm")[0] == "prepare__learning_rate"
    with pytest.raises(StabilityError, match="^--param: 'learning_rate' is ambiguous"):
        choose_param(space, "learning_rate", "gbm")
    with pytest.raises(StabilityError, match="^--param: 'gamma' is not tunable in candidate 'gbm'"):
        choose_param(space, "gamma", "gbm")
    assert choose_param({"model__max_depth": ParamChoice((1, 2))}, None, "tree") is None


def regression_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(0, 1, n), "z": rng.normal(0, 1, n)})
    frame["y"] = 3 * frame["x"] - frame["z"] + rng.normal(0, 0.5, n)
    frame.insert(0, "id", [f"r{seed}-{i}" for i in range(n)])
    return frame


def test_resampled_splits_are_stratified_and_sized_like_validation():
    blueprint = get_blueprint("tabular", target="y", task="classification")
    rows = regression_rows(90, 1).assign(y=lambda f: np.where(f["y"] > 1.5, "high", "low"))
    splits = resampled_splits(blueprint, rows, 30, 4, seed=0)
    share = (rows["y"] == "high").mean()
    held_out_ids = []
    for train, held_out in splits:
        assert len(held_out) == 30 and len(train) == 60
        assert set(train["id"]).isdisjoint(held_out["id"])
        assert abs((held_out["y"] == "high").mean() - share) < 0.05
        held_out_ids.append(frozenset(held_out["id"]))
    assert len(set(held_out_ids)) == 4


def test_analyse_refits_for_every_analysis(tmp_path):
    blueprint = get_blueprint("tabular", target="y", task="regression")
    train, val = regression_rows(120, 2), regression_rows(40, 3)
    # SGD: a model whose random_state changes the fit
    template = table_pipeline(SGDRegressor(max_iter=5, tol=None, random_state=0), scale=True)
    report = StabilityReport("m", "1", None, "tabular", "sgd", "rmse", False)
    steps = []
    analyse(
        blueprint,
        template,
        train,
        val,
        report=report,
        splits=3,
        seeds=3,
        base_seed=7,
        sweep=("model__alpha", ParamRange(1e-4, 10.0, log=True)),
        points=3,
        progress=steps.append,
    )
    assert len(steps) == 3 + 3 + 3 and steps[3] == "seed 7"
    assert report.seeds == [7, 8, 9]
    assert len(set(report.seed_scores)) == 3  # the seeds reach the model
    assert len(set(report.split_scores)) == 3
    # alpha=10 shrinks the coefficients of a 3x - z target: a far worse error than 1e-4
    assert report.param_scores[-1] > 2 * report.param_scores[0]
    assert report.param_current == pytest.approx(1e-4)
    summary = {row["analysis"]: row for row in report.summary()}
    assert summary["seeds"]["min"] == min(report.seed_scores)
    assert summary["splits"]["std"] == pytest.approx(np.std(report.split_scores, ddof=1))
    csv = pd.read_csv(pd.io.common.StringIO(report.to_csv()))
    assert list(csv["analysis"]) == ["splits"] * 3 + ["seeds"] * 3 + ["sweep"] * 3
    assert json.loads(json.dumps(report.to_dict()))["param"] == "model__alpha"
    png = plot(report, tmp_path / "deep" / "s.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_model_without_random_state_says_so():
    blueprint = get_blueprint("tabular", target="y", task="regression")
    train, val = regression_rows(60, 4), regression_rows(30, 5)
    report = StabilityReport("m", "1", None, "tabular", "ridge", "rmse", False)
    analyse(
        blueprint, table_pipeline(Ridge(), scale=True), train, val, report=report, splits=2, seeds=2
    )
    assert report.seed_scores[0] == report.seed_scores[1]
    # Ridge takes a random_state, used by none of the solvers it picks here
    assert any("every seed scored the same" in note for note in report.notes)


def test_rows_ordered_in_time_are_split_forward_never_shuffled():
    blueprint = get_blueprint("tabular", target="y", task="regression", time_column="day")
    rows = regression_rows(100, 6)
    rows["day"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(100), unit="D")).astype(
        str
    )
    shuffled = rows.sample(frac=1.0, random_state=0)
    splits = resampled_splits(blueprint, shuffled, 15, 4, seed=0)
    assert len(splits) == 4
    for train, held_out in splits:
        assert len(held_out) == 15
        # every scored row comes after every row the model was fitted on
        assert pd.to_datetime(train["day"]).max() < pd.to_datetime(held_out["day"]).min()
    assert [len(train) for train, _ in splits] == [40, 55, 70, 85]
