"""Register: create a registry version from the training run, with lineage tags."""

from components._base import driftloop_component


@driftloop_component
def register(
    model_name: str,
    blueprint: str,
    run_id: str,
    fingerprints: str,
    test_metrics: str,
    dataset: str,
    data_source: str,
    label_mapping: str,
) -> str:
    """Returns the new version number (a string, as MLflow has it)."""
    from driftloop.step_host import run_step

    return run_step(
        "driftloop.steps:register_version",
        model_name,
        blueprint,
        run_id,
        fingerprints,
        test_metrics,
        dataset,
        data_source,
        label_mapping,
    )
