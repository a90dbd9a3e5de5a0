"""Evaluate: score the trained model on the held-out test split and log it on the run."""

from kfp.dsl import Dataset, Input, Metrics, Output

from components._base import driftloop_component


@driftloop_component
def evaluate(
    blueprint: str,
    run_id: str,
    test: Input[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Returns the test metrics as JSON ({"macro_f1": ..., ...})."""
    import json

    from driftloop.step_host import run_step

    scores = run_step("driftloop.training.evaluate:evaluate_run", run_id, test.path, blueprint)
    for name, value in scores.items():
        metrics.log_metric(name, float(value))
    return json.dumps(scores)
