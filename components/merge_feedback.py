"""Merge feedback: add the labelled feedback from the prediction store to the training rows."""

from kfp.dsl import Dataset, Input, Output

from components._base import driftloop_component


@driftloop_component
def merge_feedback(
    model_name: str,
    blueprint: str,
    data: Input[Dataset],
    merged: Output[Dataset],
) -> str:
    """Returns {"rows", "feedback_rows", "duplicates_dropped", "fingerprint"} as JSON.

    Feedback becomes rows the way the blueprint says (a text and its label, a
    table row and its true value, ...); see ``training.data_steps.merge_feedback``.
    The store is the one the settings name: DRIFTLOOP_STORE_URL from the
    ``driftloop-store`` Secret on the cluster, the launching process's settings
    under kfp.local (SQLite under DRIFTLOOP_HOME when none is set). It is not a
    parameter: its password would be stored with the run, shown in the KFP UI
    and written into the task's logged inputs.
    """
    import json

    from driftloop.step_host import run_step

    summary = run_step(
        "driftloop.steps:merge_feedback_rows", data.path, merged.path, blueprint, model_name
    )
    merged.metadata.update(summary)
    return json.dumps(summary)
