"""Rollback: on a live-accuracy alert shortly after a promotion, restore the previous champion."""

from kfp.dsl import Artifact, Output

from components._base import driftloop_component


@driftloop_component
def rollback(model_name: str, reason: str, window_hours: float, report: Output[Artifact]) -> str:
    """Returns "rolled_back" (the run ends there) or "retrain"; ``report`` says why, as JSON.

    The policy is ``driftloop.promotion.should_roll_back``; when it says roll
    back but there is no previous champion to restore, retraining is the only
    remedy left, so the run carries on with it.
    """
    import json

    from driftloop.step_host import run_step

    decided = run_step("driftloop.steps:rollback_or_retrain", model_name, reason, window_hours)
    with open(report.path, "w", encoding="utf-8") as handle:
        json.dump(decided, handle, default=str)
    report.metadata["decision"] = decided["decision"]
    return decided["decision"]
