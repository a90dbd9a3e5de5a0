"""Ingest: load the blueprint's rows (a named dataset or a path/URL) into a parquet artifact."""

from kfp.dsl import Dataset, Output

from components._base import driftloop_component


@driftloop_component
def ingest(
    blueprint: str,
    dataset: str,
    data_source: str,
    label_mapping: str,
    data: Output[Dataset],
) -> str:
    """Returns the ingest summary (rows, columns, fingerprint) as JSON."""
    import json

    from driftloop.step_host import run_step

    summary = run_step(
        "driftloop.training.data_steps:ingest",
        data.path,
        blueprint,
        dataset,
        data_source,
        label_mapping,
    )
    data.metadata.update({"dataset": dataset, "rows": int(summary.get("rows", 0))})
    return json.dumps(summary, default=str)
