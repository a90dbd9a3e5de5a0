"""The step wiring both pipelines share: validate → … → gate → promote.

The tasks carry display names numbered after the five steps of a gated
deployment, which is what the KFP UI shows: 01 splits → 02 train with HPO →
03 log and register → 04 promote to challenger (smoke-serve, floor check) →
05 validate against the champion (gate, then promote). Task *names* (``gate``,
``smoke-serve``...) stay the component names: kfp.local, ``driftloop train`` and
the tests address tasks by them.

Called inside a ``@dsl.pipeline`` body, so the tasks it creates belong to the
calling pipeline (and to whatever ``dsl.If`` branch encloses the call). The
retraining pipeline differs only in what it feeds in (ingested rows merged with
feedback) and in the rollback branch around it.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import (
    evaluate,
    fit_drift_reference,
    gate,
    promote,
    promote_challenger,
    register,
    smoke_serve,
    split,
    train,
    validate,
)
from kfp import dsl

from pipelines._platform import configure

PROMOTE = "promote"
CHALLENGER = "challenger"

# task name -> what the KFP UI shows
DISPLAY_NAMES = {
    "ingest": "01 splits: ingest data",
    "merge-feedback": "01 splits: add labelled feedback",
    "validate": "01 splits: validate rows",
    "split": "01 generate splits (train / val / test)",
    "train": "02 train with HPO (candidates, Optuna)",
    "evaluate": "02 score on the test split",
    "register": "03 log and register in MLflow",
    "smoke-serve": "04 smoke-serve (runtime check)",
    "promote-challenger": "04 promote to challenger (floor check)",
    "gate": "05 validate against champion (gate)",
    "fit-drift-reference": "05 fit drift reference",
    "promote": "05 promote to champion and roll out",
    "rollback": "00 rollback on a live-score drop",
}


def named(task: dsl.PipelineTask, step: str) -> dsl.PipelineTask:
    """``task`` with the display name of ``step`` (its task name)."""
    return task.set_display_name(DISPLAY_NAMES[step])


@dataclass(frozen=True)
class TrainingSteps:
    validate: dsl.PipelineTask
    split: dsl.PipelineTask
    train: dsl.PipelineTask
    evaluate: dsl.PipelineTask
    register: dsl.PipelineTask
    smoke_serve: dsl.PipelineTask
    promote_challenger: dsl.PipelineTask
    gate: dsl.PipelineTask
    fit_drift_reference: dsl.PipelineTask
    promote: dsl.PipelineTask


def train_gate_and_promote(
    data: dsl.PipelineChannel,
    *,
    blueprint,
    model_name,
    experiment,
    seed,
    min_improvement,
    smoke_timeout_s,
    dataset,
    data_source,
    label_mapping,
    search="",
    search_of_champion="",
    significance="",
    significance_alpha=0.05,
) -> TrainingSteps:
    """Wire the steps from validation to promotion over the rows in ``data``.

    ``search``: the search settings' JSON for the train step; ``search_of_champion``:
    a model whose champion's search the train step reuses when ``search`` is empty.
    """
    # validate and split read only their input artifact and parameters: cached (a re-run
    # over the same rows skips them); everything after them writes MLflow or the registry
    validated = named(configure(validate(data=data, blueprint=blueprint), cache=True), "validate")
    splits = named(configure(split(data=data, blueprint=blueprint, seed=seed), cache=True), "split")
    splits.after(validated)
    trained = configure(
        train(
            blueprint=blueprint,
            experiment=experiment,
            seed=seed,
            fingerprints=splits.outputs["fingerprints"],
            train=splits.outputs["train"],
            val=splits.outputs["val"],
            search=search,
            dataset=dataset,
            data_source=data_source,
            search_of_champion=search_of_champion,
        ),
        heavy=True,
    )
    named(trained, "train")
    evaluated = configure(
        evaluate(
            blueprint=blueprint, run_id=trained.outputs["run_id"], test=splits.outputs["test"]
        ),
        heavy=True,
    )
    named(evaluated, "evaluate")
    registered = configure(
        register(
            model_name=model_name,
            blueprint=blueprint,
            run_id=trained.outputs["run_id"],
            fingerprints=splits.outputs["fingerprints"],
            test_metrics=evaluated.outputs["Output"],
            dataset=dataset,
            data_source=data_source,
            label_mapping=label_mapping,
        )
    )
    named(registered, "register")
    smoked = configure(
        smoke_serve(
            model_name=model_name,
            version=registered.output,
            blueprint=blueprint,
            timeout_s=smoke_timeout_s,
            test=splits.outputs["test"],
        ),
        heavy=True,
    )
    named(smoked, "smoke-serve")
    # Only a version that serves here and reaches the floor becomes challenger; nothing
    # after this moves an alias unless it did.
    admitted = named(
        configure(
            promote_challenger(
                model_name=model_name, version=registered.output, blueprint=blueprint
            )
        ),
        "promote-challenger",
    ).after(smoked)
    with dsl.If(admitted.outputs["Output"] == CHALLENGER, name="passed-floor"):
        gated = configure(
            gate(
                model_name=model_name,
                version=registered.output,
                blueprint=blueprint,
                test_fingerprint=splits.outputs["test_fingerprint"],
                min_improvement=min_improvement,
                test=splits.outputs["test"],
                significance=significance,
                significance_alpha=significance_alpha,
            ),
            heavy=True,
        )
        named(gated, "gate")
        # The reference is fitted whatever the gate said, and before any promotion:
        # the monitor switches to a new champion's reference the moment the alias
        # moves, and a kept challenger promoted later already has its own. Held-out
        # rows (validation and test), not training rows: the model's own training
        # texts look unusually familiar (low unknown-token rate) and made every live
        # window "drift".
        reference = configure(
            fit_drift_reference(
                model_name=model_name,
                version=registered.output,
                val=splits.outputs["val"],
                test=splits.outputs["test"],
            ),
            heavy=True,
        ).after(gated)
        named(reference, "fit-drift-reference")
        with dsl.If(gated.outputs["Output"] == PROMOTE, name="challenger-wins"):
            promoted = configure(promote(model_name=model_name, version=registered.output))
            named(promoted.after(reference), "promote")
    return TrainingSteps(
        validate=validated,
        split=splits,
        train=trained,
        evaluate=evaluated,
        register=registered,
        smoke_serve=smoked,
        promote_challenger=admitted,
        gate=gated,
        fit_drift_reference=reference,
        promote=promoted,
    )
