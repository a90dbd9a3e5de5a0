"""Train: fit the blueprint's candidates, pick the best on validation, log it to MLflow."""

from typing import NamedTuple

from kfp.dsl import Dataset, Input, Model, Output

from components._base import driftloop_component


@driftloop_component
def train(
    blueprint: str,
    experiment: str,
    seed: int,
    fingerprints: str,
    train: Input[Dataset],
    val: Input[Dataset],
    model: Output[Model],
) -> NamedTuple("TrainOutputs", [("run_id", str), ("model_uri", str), ("summary", str)]):
    """``summary`` is the JSON of every candidate's validation metrics and the winner."""
    import json

    from driftloop.training.candidates import train_from_files

    result = train_from_files(
        blueprint,
        train.path,
        val.path,
        seed=seed,
        experiment=experiment,
        fingerprints=json.loads(fingerprints),
    )
    # The model itself lives in MLflow; the artifact records where, for lineage.
    model.metadata.update({"run_id": result["run_id"], "model_uri": result["model_uri"]})
    with open(model.path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=str)
    return result["run_id"], result["model_uri"], json.dumps(result, default=str)
