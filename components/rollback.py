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
    from datetime import UTC, datetime

    from driftloop.deploy import get_deployer
    from driftloop.promotion import should_roll_back
    from driftloop.registry import PREVIOUS_CHAMPION, ModelRegistry, rollback_model
    from driftloop.settings import get_settings

    def decided(decision: str, detail: dict) -> str:
        with open(report.path, "w", encoding="utf-8") as handle:
            json.dump({"decision": decision, **detail}, handle, default=str)
        report.metadata["decision"] = decision
        return decision

    registry = ModelRegistry()
    if not registry.exists(model_name):
        return decided("retrain", {"why": f"no registered model named {model_name!r}"})
    promoted_at = registry.promoted_at(model_name)
    if not should_roll_back(reason, promoted_at, datetime.now(UTC), window_hours * 3600.0):
        why = f"{reason} with the champion promoted at {promoted_at} is not a rollback case"
        return decided("retrain", {"why": why})
    if registry.version_by_alias(model_name, PREVIOUS_CHAMPION) is None:
        return decided("retrain", {"why": "no previous-champion to restore"})
    result = json.loads(rollback_model(model_name, reason))
    rollout = get_deployer(get_settings()).roll_out(model_name, result["champion"])
    result["rollout"] = rollout.to_dict() if hasattr(rollout, "to_dict") else str(rollout)
    return decided("rolled_back", result)
