"""The retraining pipeline an alert launches: roll back, or retrain with feedback.

rollback policy → (rolled back: done) | (retrain: ingest → merge feedback →
the training pipeline's steps from validation on). A LiveScoreDrop shortly
after a promotion blames the promotion and restores the previous champion;
every other alert (DriftDetected, FeedbackBacklog, a late accuracy drop) trains
a challenger on the base data plus the labelled feedback and gates it.
"""

from components import ingest, merge_feedback, rollback
from kfp import dsl

from pipelines._platform import configure
from pipelines._steps import named, train_gate_and_promote

PIPELINE_NAME = "driftloop-retraining"
RETRAIN = "retrain"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Answer a driftloop alert: roll back a fresh champion on a live-accuracy "
    "drop, else retrain on the data plus labelled feedback and gate the challenger.",
)
def retraining_pipeline(
    model_name: str = "sentiment",
    reason: str = "manual",
    blueprint: str = "sentiment",
    dataset: str = "sentiment-offline",
    data_source: str = "",
    label_mapping: str = "",
    seed: int = 42,
    min_improvement: float = 0.01,
    experiment: str = "driftloop",
    rollback_window_hours: float = 24.0,
    smoke_timeout_s: float = 120.0,
    search: str = "",
    significance: str = "",
    significance_alpha: float = 0.05,
):
    """``significance``: ``"mcnemar"`` makes the gate also require a significant gain
    (p < ``significance_alpha``) on the rows both versions are judged on; ``""``: the
    ``min_improvement`` margin alone. ``search``: the search settings as JSON; ``""``
    reuses the search the champion was trained with (its ``driftloop.search`` tag), so a
    retrained challenger is searched the way the model it challenges was."""
    policy = configure(
        rollback(model_name=model_name, reason=reason, window_hours=rollback_window_hours)
    )
    named(policy, "rollback")
    with dsl.If(policy.outputs["Output"] == RETRAIN, name="retrain"):
        ingested = configure(
            ingest(
                blueprint=blueprint,
                dataset=dataset,
                data_source=data_source,
                label_mapping=label_mapping,
            )
        )
        named(ingested, "ingest")
        # the store URL carries credentials: the task reads it from its environment
        # (DRIFTLOOP_STORE_URL: a Secret on the cluster, the settings under kfp.local),
        # never from a parameter that KFP would store, show and log
        merged = configure(
            merge_feedback(
                model_name=model_name,
                blueprint=blueprint,
                data=ingested.outputs["data"],
            ),
            needs_store=True,
        )
        named(merged, "merge-feedback")
        train_gate_and_promote(
            merged.outputs["merged"],
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
            search_of_champion=model_name,
            significance=significance,
            significance_alpha=significance_alpha,
        )
