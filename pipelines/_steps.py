"""The step wiring both pipelines share: validate → … → gate → promote.

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
    register,
    smoke_serve,
    split,
    train,
    validate,
)
from kfp import dsl

from pipelines._platform import configure

PROMOTE = "promote"


@dataclass(frozen=True)
class TrainingSteps:
    validate: dsl.PipelineTask
    split: dsl.PipelineTask
    train: dsl.PipelineTask
    evaluate: dsl.PipelineTask
    register: dsl.PipelineTask
    smoke_serve: dsl.PipelineTask
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
) -> TrainingSteps:
    """Wire the steps from validation to promotion over the rows in ``data``.

    ``search``: the search settings' JSON for the train step; ``search_of_champion``:
    a model whose champion's search the train step reuses when ``search`` is empty.
    """
    validated = configure(validate(data=data, blueprint=blueprint))
    splits = configure(split(data=data, blueprint=blueprint, seed=seed)).after(validated)
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
    evaluated = configure(
        evaluate(
            blueprint=blueprint, run_id=trained.outputs["run_id"], test=splits.outputs["test"]
        ),
        heavy=True,
    )
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
    gated = configure(
        gate(
            model_name=model_name,
            version=registered.output,
            blueprint=blueprint,
            test_fingerprint=splits.outputs["test_fingerprint"],
            min_improvement=min_improvement,
            test=splits.outputs["test"],
        ),
        heavy=True,
    ).after(smoked)
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
    with dsl.If(gated.outputs["Output"] == PROMOTE, name="challenger-wins"):
        promoted = configure(promote(model_name=model_name, version=registered.output)).after(
            reference
        )
    return TrainingSteps(
        validate=validated,
        split=splits,
        train=trained,
        evaluate=evaluated,
        register=registered,
        smoke_serve=smoked,
        gate=gated,
        fit_drift_reference=reference,
        promote=promoted,
    )
