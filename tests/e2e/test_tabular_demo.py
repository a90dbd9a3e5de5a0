"""The tabular loop: a unit change in one column, detected, retrained, promoted."""

from __future__ import annotations

import os

import pytest

from driftloop.stack.services import alerting_binaries
from tests.e2e.demo_runs import DEMO_MARKS, assert_loop_closed, run_demo

pytestmark = DEMO_MARKS


# The regression loop's gate decision is noisy (the diabetes demo closed in 2 of 3 runs
# on 2026-11-30: a challenger once lost by 1.91 %); it runs on request, at 4+ minutes.
REGRESSION_DEMO = pytest.param(
    "diabetes",
    "rmse",
    marks=pytest.mark.skipif(
        os.environ.get("DRIFTLOOP_E2E_REGRESSION_DEMO") != "1",
        reason="set DRIFTLOOP_E2E_REGRESSION_DEMO=1 to run the (noisy) regression loop",
    ),
)


@pytest.mark.parametrize(("dataset", "metric"), [("penguins", "macro_f1"), REGRESSION_DEMO])
def test_tabular_demo_closes_the_loop_on_a_column_shift(tmp_path, dataset, metric):
    """A classification and a regression table: a unit change in one column is
    detected, the retrained model is promoted and served (Prometheus when installed)."""
    alerting = "prometheus" if alerting_binaries() is not None else "evaluator"
    extra = ("--dataset", dataset) + (() if alerting == "prometheus" else ("--no-prometheus",))
    run = run_demo(tmp_path / dataset, *extra, blueprint="tabular")
    assert_loop_closed(run, alerting, model=f"tabular-{dataset}")
    report = run.report
    assert report["metric"] == metric
    traffic = report["traffic"]
    assert all(traffic[phase]["live_score"] is not None for phase in ("in_domain", "shifted"))
    assert "monitor: drift detected" in run.stdout
