"""Fit drift reference: save the drift detectors for a version and tag it with their URI."""

from kfp.dsl import Dataset, Input

from components._base import driftloop_component


@driftloop_component
def fit_drift_reference(model_name: str, version: str, reference: Input[Dataset]) -> str:
    """Returns the artifact URI of the saved detectors."""
    from driftloop.monitor.reference import fit_reference

    return str(fit_reference(model_name, version, reference.path))
