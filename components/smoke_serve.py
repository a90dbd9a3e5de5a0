"""Smoke-serve: start the real predictor on the new version and send it the blueprint's samples."""

from components._base import driftloop_component


@driftloop_component
def smoke_serve(model_name: str, version: str, blueprint: str, timeout_s: float) -> str:
    """Returns {ok, latency_ms, ...} as JSON; raises (failing the run) if the model cannot serve."""
    import json

    from driftloop.blueprints import get_blueprint
    from driftloop.serving.smoke import smoke_serve as run_smoke

    report = run_smoke(
        f"models:/{model_name}/{version}",
        get_blueprint(blueprint).sample_inputs(),
        timeout_s=timeout_s,
    )
    return json.dumps(report, default=str)
