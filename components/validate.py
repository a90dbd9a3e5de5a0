"""Validate: schema and content checks on the ingested rows; fails the run on bad data."""

from kfp.dsl import Dataset, Input

from components._base import driftloop_component


@driftloop_component
def validate(data: Input[Dataset], blueprint: str) -> str:
    """Returns the validation report as JSON; raises DatasetValidationError on failure.

    Labels are checked against the blueprint's, so a wrong --label-mapping stops
    the run here rather than training a model on labels nothing else expects.
    """
    import json

    from driftloop.blueprints import get_blueprint
    from driftloop.datasets import validate_file

    labels = get_blueprint(blueprint).labels
    return json.dumps(validate_file(data.path, labels=labels), default=str)
