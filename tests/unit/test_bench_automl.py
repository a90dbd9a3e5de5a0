"""The AutoML benchmark's harness: tables, metric conventions, the constant fallback.

The figures themselves come from ``make bench-automl``; here only a
few-second fit runs, to prove an adapter produces scoreable predictions.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench.automl import (
    DRIFTLOOP,
    FLAML,
    LIGHTGBM,
    Row,
    Score,
    aligned_proba,
    evaluate,
    ignoring_overruns,
    loss_of,
    metric_value,
    relative_loss,
    summary,
)
from bench.automl_datasets import DATASETS, MAX_ROWS, BenchDataset, outer_split
from bench.automl_systems import DefaultLightGBM, Flaml
from bench.run import SECTIONS

REPO = Path(__file__).resolve().parents[2]


def test_the_section_is_registered_for_make_bench_automl():
    assert SECTIONS["automl"] == "bench.automl"
    sections = next(
        line for line in (REPO / "mk" / "bench.mk").read_text().splitlines()
        if line.startswith("BENCH_SECTIONS")
    )  # fmt: skip
    assert "automl" in sections.split()


def test_the_registry_has_eight_tables_or_more_of_every_task():
    tasks = [d.task for d in DATASETS.values()]
    assert len(DATASETS) >= 8
    assert {task: tasks.count(task) >= 2 for task in ("binary", "multiclass", "regression")} == {
        "binary": True,
        "multiclass": True,
        "regression": True,
    }


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_table_loads_offline_and_splits_75_25(name):
    dataset = DATASETS[name]
    split = outer_split(dataset, seed=0)
    rows = len(split.X_train) + len(split.X_test)
    assert rows == split.rows_total <= MAX_ROWS
    assert abs(len(split.X_test) / rows - 0.25) < 0.01
    assert dataset.target not in split.X_train.columns
    assert "rownames" not in split.X_train.columns
    if dataset.classification:
        # stratified: every class on both sides, in the same order for every system
        assert set(split.y_train) == set(split.y_test) == set(split.classes)
        assert (dataset.task == "binary") == (len(split.classes) == 2)
    else:
        assert split.y_train.dtype == float and split.classes is None


def test_the_split_is_the_same_for_every_caller():
    first, second = (outer_split(DATASETS["glass"], seed=0) for _ in range(2))
    pd.testing.assert_frame_equal(first.X_test, second.X_test)


# --- metric conventions --------------------------------------------------------------
def test_metrics_follow_the_automl_benchmark_and_losses_are_lower_is_better():
    y = pd.Series(["a", "b", "b", "a"])
    perfect = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    assert metric_value("binary", y, perfect, ["a", "b"]) == 1.0
    assert loss_of("binary", 1.0) == 0.0
    uniform = np.full((4, 2), 0.5)
    assert metric_value("multiclass", y, uniform, ["a", "b"]) == pytest.approx(math.log(2))
    assert loss_of("multiclass", 0.7) == 0.7
    truth = pd.Series([1.0, 2.0, 3.0])
    assert metric_value("regression", truth, np.array([1.0, 2.0, 5.0]), None) == pytest.approx(
        math.sqrt(4 / 3)
    )
    assert relative_loss(1.1, 1.0) == pytest.approx(0.1)
    assert relative_loss(0.0, 0.0) == 0.0


def test_probability_columns_are_reordered_to_the_benchmark_class_order():
    proba = np.array([[0.7, 0.3], [0.1, 0.9]])
    aligned = aligned_proba(proba, ["z", "a"], ["a", "m", "z"])
    np.testing.assert_allclose(aligned, [[0.3, 0.0, 0.7], [0.9, 0.0, 0.1]])


def _score(name: str, loss: float) -> Score:
    return Score(name, "rmse", loss, loss, 1.0, 1.0, "ok")


def test_win_tie_and_relative_loss_per_table_and_summary():
    def row(driftloop: float, flaml: float, lightgbm: float) -> Row:
        scores = {
            DRIFTLOOP: _score(DRIFTLOOP, driftloop),
            FLAML: _score(FLAML, flaml),
            LIGHTGBM: _score(LIGHTGBM, lightgbm),
        }
        return Row("t", "regression", "rmse", 100, 60.0, scores)

    tie, loss = row(1.005, 1.0, 1.0), row(1.2, 1.0, 1.0)
    assert tie.win_or_tie_vs_lightgbm and not loss.win_or_tie_vs_lightgbm
    figures = summary([tie, loss])
    assert figures["win_or_tie_share"] == 0.5
    assert figures["mean_relative_loss_vs_flaml"] == pytest.approx((0.005 + 0.2) / 2)
    # the diagnostic view scores an over-budget fit on its own predictions
    late = row(3.0, 1.0, 1.0)
    late.scores[DRIFTLOOP] = replace(late.scores[DRIFTLOOP], status="over budget", fitted_value=1.0)
    assert not late.win_or_tie_vs_lightgbm
    assert ignoring_overruns([late])[0].win_or_tie_vs_lightgbm


# --- the constant fallback -------------------------------------------------------------
class _Broken:
    def fit(self, X, y, task, budget_s, seed):
        raise RuntimeError("no model today")


class _Slow:
    def fit(self, X, y, task, budget_s, seed):
        time.sleep(budget_s * 2)
        return DefaultLightGBM().fit(X, y, task, budget_s, seed)


def _tiny_binary() -> BenchDataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame(
        {
            "x": x,
            "colour": rng.choice(["red", "blue"], size=200),
            "label": np.where(x + rng.normal(scale=0.5, size=200) > 0, "yes", "no"),
        }
    )
    return BenchDataset("tiny", "binary", "label", "test", lambda: frame)


@pytest.mark.parametrize(("system", "status"), [(_Broken(), "failed"), (_Slow(), "over budget")])
def test_a_failed_or_overrunning_system_scores_as_the_constant_predictor(system, status):
    split = outer_split(_tiny_binary(), seed=0)
    score = evaluate(system, "x", split, budget_s=0.05)
    assert score.status == status
    assert score.value == 0.5  # the class prior ranks every row the same: AUC 0.5
    assert score.loss == 0.5


def test_default_lightgbm_is_scored_on_the_outer_test_rows():
    split = outer_split(_tiny_binary(), seed=0)
    score = evaluate(DefaultLightGBM(), LIGHTGBM, split, budget_s=30)
    assert score.status == "ok", score.error
    assert 0.75 < score.value <= 1.0


@pytest.mark.slow
def test_flaml_adapter_fits_a_tiny_table_with_a_few_second_budget():
    split = outer_split(DATASETS["glass"], seed=0)
    predictor = Flaml().fit(split.X_train, split.y_train, "multiclass", 2, 0)
    assert sorted(predictor.classes_) == split.classes
    proba = predictor.predict_proba(split.X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    aligned = aligned_proba(proba, predictor.classes_, split.classes)
    value = metric_value("multiclass", split.y_test, aligned, split.classes)
    assert 0 < value < math.log(len(split.classes))  # better than guessing uniformly
    assert predictor.info["budget"] == "time_budget=2 s"


def test_some_tables_alone_by_name_in_the_registry_order(monkeypatch):
    from bench.automl import TABLES_ENV, main, selected_datasets

    assert [d.name for d in selected_datasets("digits, credit_data")] == ["credit_data", "digits"]
    assert [d.name for d in selected_datasets("")] == list(DATASETS)
    monkeypatch.setenv(TABLES_ENV, "ames")
    assert [d.name for d in selected_datasets()] == ["ames"]
    with pytest.raises(ValueError, match=r"--tables: unknown table\(s\) iris; known: credit_data"):
        selected_datasets("iris,ames")
    with pytest.raises(SystemExit) as stopped:  # one usage line, no traceback
        main(["--tables", "iris"])
    assert stopped.value.code == 2


def test_some_budgets_alone_else_the_runs_own(monkeypatch):
    from bench.automl import BUDGETS_ENV, FULL_BUDGETS, QUICK_BUDGETS, main, selected_budgets

    monkeypatch.delenv(BUDGETS_ENV, raising=False)
    assert selected_budgets(quick=False) == FULL_BUDGETS
    assert selected_budgets(quick=True) == QUICK_BUDGETS
    assert selected_budgets(quick=False, text="60") == (60.0,)
    monkeypatch.setenv(BUDGETS_ENV, "300, 60")
    assert selected_budgets(quick=True) == (300.0, 60.0)
    for bad in ("sixty", "0", ","):
        with pytest.raises(ValueError, match="--budgets: expected positive seconds"):
            selected_budgets(quick=False, text=bad)
    with pytest.raises(SystemExit) as stopped:
        main(["--budgets", "-5"])
    assert stopped.value.code == 2
