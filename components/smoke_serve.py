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

    import pandas as pd

    from driftloop.blueprints import get_blueprint
    from driftloop.serving.smoke import smoke_serve as run_smoke

    example = get_blueprint(blueprint).input_example(pd.read_parquet(test.path))
    samples = json.loads(example.to_json(orient="records", date_format="iso"))
    report = run_smoke(f"models:/{model_name}/{version}", samples, timeout_s=timeout_s)
    return json.dumps(report, default=str)
