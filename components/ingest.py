"""Ingest: load a named dataset (optionally from a path/URL) into a parquet artifact."""

from kfp.dsl import Dataset, Output

from components._base import driftloop_component


@driftloop_component
def ingest(
    dataset: str,
    data_source: str,
    label_mapping: str,
    data: Output[Dataset],
) -> str:
    """Returns the ingest summary (rows, labels, fingerprint) as JSON."""
    import json

    from driftloop.datasets import ingest_to

    summary = ingest_to(
        data.path,
        dataset,
        source=data_source or None,
        label_mapping=label_mapping or None,
    )
    data.metadata.update({"dataset": dataset, "rows": int(summary.get("rows", 0))})
    return json.dumps(summary, default=str)
