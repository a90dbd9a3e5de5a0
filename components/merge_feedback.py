"""Merge feedback: add the labelled feedback from the prediction store to the training rows."""

from kfp.dsl import Dataset, Input, Output

from components._base import driftloop_component


@driftloop_component
def merge_feedback(
    model_name: str,
    blueprint: str,
    store_url: str,
    data: Input[Dataset],
    merged: Output[Dataset],
) -> str:
    """Returns {"rows", "feedback_rows", "duplicates_dropped", "fingerprint"} as JSON.

    Feedback becomes rows the way the blueprint says (a text and its label, a
    table row and its true value, ...); see ``training.data_steps.merge_feedback``.
    An empty ``store_url`` means the store the settings name (SQLite under
    DRIFTLOOP_HOME, or the cluster's PostgreSQL through DRIFTLOOP_STORE_URL).
    """
    import json

    from driftloop.settings import get_settings
    from driftloop.training.data_steps import merge_feedback as merge

    url = store_url or get_settings().resolved_store_url
    summary = merge(data.path, merged.path, blueprint, model_name, url)
    merged.metadata.update(summary)
    return json.dumps(summary)
