"""Promote to challenger: the floor check.

A version that reaches the floor gets the ``challenger`` alias.
"""

from kfp.dsl import Artifact, Output

from components._base import driftloop_component


@driftloop_component
def promote_challenger(
    model_name: str, version: str, blueprint: str, report: Output[Artifact]
) -> str:
    """Returns "challenger" (judged against the champion next) or "below-floor" (the run
    stops here: no alias moves); ``report`` holds the score, the floor and why, as JSON.

    The floor is the run's blueprint option ``floor``, else the deployment's
    ``DRIFTLOOP_PROMOTION_FLOOR``, else the blueprint metric's own.
    """
    import json

    from driftloop.step_host import run_step

    admitted = run_step("driftloop.steps:floor_check", model_name, version, blueprint)
    with open(report.path, "w", encoding="utf-8") as handle:
        json.dump(admitted, handle)
    report.metadata.update({"outcome": admitted["outcome"], "reason": admitted["reason"]})
    return admitted["outcome"]
