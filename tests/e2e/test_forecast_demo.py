"""The forecast demo: its traffic (real MSFT days, observations by series and date) and,
as a subprocess, ``driftloop demo forecast --quick`` closing the loop on the 2008 crisis."""

from __future__ import annotations

import json

import pytest

from driftloop.demo.forecast_traffic import CALM, VOLATILE, ForecastTraffic
from driftloop.demo.sources import traffic_source


def test_forecast_traffic_is_real_days_observed_by_series_and_date(tmp_path):
    source = traffic_source("forecast")
    assert isinstance(source, ForecastTraffic) and source.model == "forecast-msft"
    plan = source.plan(quick=True)
    assert not plan.expects_promotion
    assert json.loads(plan.pipeline_arguments["search"])["candidates"][0] == "persistence"
    data = source.prepare(tmp_path, quick=True, seed=0)
    trained = data.train_source.read_text().splitlines()
    assert trained[0] == "date,close" and trained[-1] < "2007"
    for examples, (first, last) in ((data.baseline, CALM), (data.shifted, VOLATILE)):
        days = [e.instance["date"] for e in examples]
        assert days == sorted(days) and first <= days[0] and days[-1] <= last
        example = examples[0]
        assert len(example.instance["last_prices"]) == 60 and example.truth > 0
        assert example.observation == {"series": "msft", "date": example.instance["date"]}
    # the retraining reads the whole series through the crisis
    assert data.retrain_source.read_text().splitlines()[-1] >= "2009-03"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1500)
def test_forecast_demo_closes_the_loop_on_the_crisis(tmp_path):
    """Two kfp.local runs (v1, the retraining) and the stack: 888 s at load 13 on 2 cores
    (2026-11-30), so the subprocess gets more than the shared runner's 900 s."""
    from tests.e2e.demo_runs import registry_view, run_demo, trigger_ledger

    run = run_demo(tmp_path / "forecast", "--no-prometheus", blueprint="forecast", timeout_s=1400)
    assert run.returncode == 0, run.stdout[-3000:]
    report = run.report
    assert report["closed"] and report["metric"] == "mase"
    traffic = report["traffic"]
    # every close was observed: the live MASE is computed in both regimes
    assert traffic["in_domain"]["feedback"] > 0 and traffic["in_domain"]["live_score"] is not None
    assert "monitor: drift detected" in run.stdout
    # the observed closes feed the online residual test: the crisis' errors are larger
    assert "monitor: the champion's errors grew" in run.stdout
    decisions, runs = trigger_ledger(run.home)
    launched = [d for d in decisions if d.outcome == "launched"]
    assert len(launched) == 1 and runs[0].state == "succeeded"
    registry = registry_view(run.home, "forecast-msft")
    assert set(registry["versions"]) == {"1", "2"}
    # the honest gate decided: either v2 beat v1 by the margin, or v1 still serves
    decision = registry["versions"]["2"]["driftloop.decision"]
    assert decision in {"promote", "keep"}
    assert registry["aliases"]["champion"] == ("2" if decision == "promote" else "1")
