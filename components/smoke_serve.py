"""Smoke-serve: start the real predictor on the new version and send it the blueprint's samples."""

from kfp.dsl import Dataset, Input

from components._base import driftloop_component


@driftloop_component
def smoke_serve(
    model_name: str, version: str, blueprint: str, timeout_s: float, test: Input[Dataset]
) -> str:
    """Returns {ok, latency_ms, ...} as JSON; raises (failing the run) if the model cannot serve.

    The samples are the blueprint's input example drawn from the test rows.
    """
    import json

    from driftloop.step_host import run_step

    report = run_step(
        "driftloop.steps:smoke_serve_samples", model_name, version, blueprint, timeout_s, test.path
    )
    return json.dumps(report, default=str)
