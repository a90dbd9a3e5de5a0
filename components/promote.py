"""Promote: make the version champion and roll it out to whatever serves the model."""

from components._base import driftloop_component


@driftloop_component
def promote(model_name: str, version: str) -> str:
    """Returns the promotion and rollout report as JSON."""
    import json

    from driftloop.deploy import get_deployer
    from driftloop.registry import promote_version
    from driftloop.settings import get_settings

    promoted = json.loads(promote_version(model_name, version))
    rollout = get_deployer(get_settings()).roll_out(model_name, version)
    promoted["rollout"] = rollout.to_dict() if hasattr(rollout, "to_dict") else str(rollout)
    return json.dumps(promoted, default=str)
