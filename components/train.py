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
    search: str = "",
    dataset: str = "",
    data_source: str = "",
    search_of_champion: str = "",
) -> NamedTuple("TrainOutputs", [("run_id", str), ("model_uri", str), ("summary", str)]):
    """``summary`` is the JSON of every candidate's validation metrics and the winner.

    ``search``: the search settings' JSON (preset, sampler, pruner, trials, time
    budget, candidates, validation; ``""``: the blueprint's default). With
    ``search_of_champion`` (a model name) and no ``search``, the search that
    model's champion was trained with is reused. ``dataset`` / ``data_source``
    name the rows' origin on the MLflow dataset inputs.
    """
    import json

    from driftloop.step_host import run_step

    result = run_step(
        "driftloop.training.candidates:train_from_files",
        blueprint,
        train.path,
        val.path,
        seed=seed,
        experiment=experiment,
        fingerprints=json.loads(fingerprints),
        search=search,
        dataset=dataset,
        data_source=data_source,
        search_of_champion=search_of_champion,
    )
    # The model itself lives in MLflow; the artifact records where, for lineage.
    model.metadata.update({"run_id": result["run_id"], "model_uri": result["model_uri"]})
    with open(model.path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=str)
    return result["run_id"], result["model_uri"], json.dumps(result, default=str)
