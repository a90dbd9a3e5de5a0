"""Fit drift reference: save the drift detectors for a version and tag it with their URI."""

from kfp.dsl import Dataset, Input

from components._base import driftloop_component


@driftloop_component
def fit_drift_reference(
    model_name: str, version: str, val: Input[Dataset], test: Input[Dataset]
) -> str:
    """Returns the artifact URI of the saved detectors, fitted on both held-out splits."""
    from driftloop.step_host import run_step

    uri = run_step(
        "driftloop.monitor.reference:fit_reference", model_name, version, [val.path, test.path]
    )
    return str(uri)
