"""The sentiment loop closed by the built-in alert evaluator (no Prometheus)."""

from __future__ import annotations

from tests.e2e.demo_runs import DEMO_MARKS, assert_loop_closed, run_demo

pytestmark = DEMO_MARKS


def test_loop_closes_with_the_builtin_evaluator(tmp_path):
    run = run_demo(tmp_path / "evaluator", "--no-prometheus")
    assert_loop_closed(run, "evaluator")
    assert not (run.home / "stack" / "prometheus.pid").exists()
    onset = run.report["onset_to_new_champion_s"]
    print(f"evaluator demo: {run.seconds:.0f}s, onset -> new champion {onset:.1f}s")
