"""The recsys demo: its traffic (MovieLens users of 2005-06, then of 2015-16, clicks by
request id) and, as a subprocess, ``driftloop demo recsys --quick`` closing the loop."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from driftloop.demo.recsys_traffic import IN_DOMAIN, SHIFTED, TRAIN_UNTIL, RecsysTraffic
from driftloop.demo.sources import traffic_source


def test_recsys_traffic_is_two_periods_of_real_users_with_their_items_as_clicks(tmp_path):
    source = traffic_source("recsys")
    assert isinstance(source, RecsysTraffic) and source.model == "recsys-movielens"
    plan = source.plan(quick=True)
    assert json.loads(plan.pipeline_arguments["search"])["candidates"] == ["mostpop", "driftloop"]
    data = source.prepare(tmp_path, quick=True, seed=0)
    trained = pd.read_csv(data.train_source)
    cut = pd.Timestamp(TRAIN_UNTIL, tz="UTC").timestamp()
    assert len(trained) == data.train_rows and trained["timestamp"].max() < cut
    retrain = pd.read_csv(data.retrain_source)
    assert retrain["timestamp"].max() < pd.Timestamp(SHIFTED[0], tz="UTC").timestamp()
    known = set(trained["user"].astype(str))
    for examples in (data.baseline, data.shifted):
        assert len({e.instance["user_id"] for e in examples}) >= 40
        for example in examples:  # clicks by request id: later items, never the session's
            assert example.truth and example.observation is None
            assert not set(example.truth) & set(example.instance["recent_items"])
    # the shift: nearly every user of 2015-16 is new to v1, fewer of 2005-06 are
    cold = [sum(e.instance["user_id"] not in known for e in x) / len(x)
            for x in (data.baseline, data.shifted)]  # fmt: skip
    assert cold[1] > 0.9 and cold[0] < cold[1]
    assert IN_DOMAIN[0] == TRAIN_UNTIL and "2015-16" in data.describe_shift


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_recsys_demo_closes_the_loop_on_a_later_period(tmp_path):
    from tests.e2e.demo_runs import registry_view, run_demo, trigger_ledger

    run = run_demo(tmp_path / "recsys", "--no-prometheus", blueprint="recsys")
    assert run.returncode == 0, run.stdout[-3000:]
    report = run.report
    assert report["closed"] and report["metric"] == "ndcg_at_10"
    traffic = report["traffic"]
    assert traffic["in_domain"]["feedback"] > 0 and traffic["shifted"]["feedback"] > 0
    # v1 knows no film of 2015-16: its live NDCG falls after the shift
    assert traffic["shifted"]["live_score"] < traffic["in_domain"]["live_score"]
    decisions, runs = trigger_ledger(run.home)
    assert [d.outcome for d in decisions].count("launched") == 1
    assert runs[0].state == "succeeded"
    registry = registry_view(run.home, "recsys-movielens")
    assert registry["aliases"]["champion"] == "2"
    assert registry["versions"]["2"]["driftloop.decision"] == "promote"
