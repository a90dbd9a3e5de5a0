"""Validate: schema and content checks on the ingested rows; fails the run on bad data."""

from kfp.dsl import Dataset, Input

from components._base import driftloop_component


@driftloop_component
def validate(data: Input[Dataset], blueprint: str) -> str:
    """Returns the validation report as JSON; raises DatasetValidationError on failure.

    The checks are the blueprint's (e.g. the sentiment labels, so a wrong
    --label-mapping stops the run here; a table's target column and classes).
    """
    import json

    from driftloop.step_host import run_step

    report = run_step("driftloop.training.data_steps:validate", data.path, blueprint)
    return json.dumps(report, default=str)
