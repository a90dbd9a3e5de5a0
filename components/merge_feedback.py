"""Merge feedback: add the labelled feedback from the prediction store to the training rows."""

from kfp.dsl import Dataset, Input, Output

from components._base import driftloop_component


@driftloop_component
def merge_feedback(
    model_name: str,
    store_url: str,
    data: Input[Dataset],
    merged: Output[Dataset],
) -> str:
    """Returns {"rows", "feedback_rows", "duplicates_dropped", "fingerprint"} as JSON.

    Rows are deduplicated on ``id`` with the feedback winning: a user's label is
    newer evidence than the row it corrects. An empty ``store_url`` means the
    store the settings name (SQLite under DRIFTLOOP_HOME, or the cluster's
    PostgreSQL through DRIFTLOOP_STORE_URL).
    """
    import json

    import pandas as pd

    from driftloop.settings import get_settings
    from driftloop.store import PredictionStore
    from driftloop.training.splits import fingerprint

    columns = ["id", "text", "label"]
    # Feedback rows carry no timestamp; keeping only the canonical columns stops
    # a half-empty optional column from failing validation downstream.
    base = pd.read_parquet(data.path, columns=columns).astype(str)
    url = store_url or get_settings().resolved_store_url
    feedback = PredictionStore(url).labelled_feedback(model_name)
    feedback = feedback.loc[:, columns].astype(str)
    combined = pd.concat([base, feedback], ignore_index=True)
    deduplicated = combined.drop_duplicates(subset="id", keep="last").reset_index(drop=True)
    deduplicated.to_parquet(merged.path, index=False)
    summary = {
        "rows": len(deduplicated),
        "feedback_rows": len(feedback),
        "duplicates_dropped": len(combined) - len(deduplicated),
        "fingerprint": fingerprint(deduplicated),
    }
    merged.metadata.update(summary)
    return json.dumps(summary)
