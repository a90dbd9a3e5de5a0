"""Split: train/validation/test by a seeded hash of each row id, with fingerprints."""

from typing import NamedTuple

from kfp.dsl import Dataset, Input, Output

from components._base import driftloop_component


@driftloop_component
def split(
    data: Input[Dataset],
    blueprint: str,
    seed: int,
    train: Output[Dataset],
    val: Output[Dataset],
    test: Output[Dataset],
) -> NamedTuple("SplitOutputs", [("fingerprints", str), ("test_fingerprint", str)]):
    """``fingerprints`` is JSON: {"dataset", "train", "val", "test", "scheme"}.

    A row's split depends on its id and the seed only, so a retraining run
    keeps the champion's training rows out of the new test split. The test
    fingerprint is also a parameter of its own: the gate compares it with the
    champion's to know whether their stored scores are comparable.
    """
    import json

    from driftloop.step_host import run_step

    fingerprints = run_step(
        "driftloop.training.data_steps:split",
        data.path,
        {"train": train.path, "val": val.path, "test": test.path},
        blueprint,
        seed=seed,
    )
    for name, artifact in (("train", train), ("val", val), ("test", test)):
        artifact.metadata["fingerprint"] = fingerprints.get(name, "")
    return json.dumps(fingerprints), fingerprints["test"]
