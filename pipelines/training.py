"""The training pipeline: data source → registered, gated, possibly promoted model.

ingest → validate → split → train (candidates + selection) → evaluate (test) →
register → smoke-serve → promote to challenger (floor check) → gate → fit drift
reference → promote (if the gate says so). The KFP UI shows them as the five
steps of a gated deployment (``pipelines._steps.DISPLAY_NAMES``).
"""

from components import ingest
from kfp import dsl

from pipelines._platform import configure
from pipelines._steps import named, train_gate_and_promote

PIPELINE_NAME = "driftloop-training"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train a blueprint's candidates, register the best, gate it against the "
    "champion and promote it if it wins.",
)
def training_pipeline(
    blueprint: str = "sentiment",
    model_name: str = "sentiment",
    dataset: str = "sentiment-offline",
    data_source: str = "",
    label_mapping: str = "",
    seed: int = 42,
    min_improvement: float = 0.01,
    experiment: str = "driftloop",
    smoke_timeout_s: float = 120.0,
    search: str = "",
    significance: str = "",
    significance_alpha: float = 0.05,
):
    """``significance``: ``"mcnemar"`` makes the gate also require a significant gain
    (p < ``significance_alpha``) on the rows both versions are judged on; ``""``: the
    ``min_improvement`` margin alone. ``search``: the search settings as JSON
    (``driftloop train --preset/--sampler/...``; see ``driftloop.training.presets``);
    ``""`` fits every candidate once."""
    ingested = configure(
        ingest(
            blueprint=blueprint,
            dataset=dataset,
            data_source=data_source,
            label_mapping=label_mapping,
        )
    )
    named(ingested, "ingest")
    train_gate_and_promote(
        ingested.outputs["data"],
        blueprint=blueprint,
        model_name=model_name,
        experiment=experiment,
        seed=seed,
        min_improvement=min_improvement,
        smoke_timeout_s=smoke_timeout_s,
        dataset=dataset,
        data_source=data_source,
        label_mapping=label_mapping,
        search=search,
        significance=significance,
        significance_alpha=significance_alpha,
    )
