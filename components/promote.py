"""Promote: make the version champion and roll it out to whatever serves the model."""

from components._base import driftloop_component


@driftloop_component
def promote(model_name: str, version: str) -> str:
    """Returns the promotion and rollout report as JSON."""
    from driftloop.step_host import run_step

    return run_step("driftloop.steps:promote_and_roll_out", model_name, version)
