"""Gate: challenger vs champion on the same test split; records the decision on the version."""

from kfp.dsl import Artifact, Dataset, Input, Output

from components._base import driftloop_component


@driftloop_component
def gate(
    model_name: str,
    version: str,
    blueprint: str,
    test_fingerprint: str,
    min_improvement: float,
    test: Input[Dataset],
    report: Output[Artifact],
    significance: str = "",
    significance_alpha: float = 0.05,
) -> str:
    """Returns "promote" or "keep"; ``report`` is the whole decision (reason, scores) as JSON.

    ``significance``: ``"mcnemar"`` also requires the gain to be significant at
    ``significance_alpha`` (classifiers); ``""`` applies the margin alone.

    The decision is the single ``Output`` because kfp.local (2.17) resolves a
    ``dsl.If`` on a task output only when the output is named ``Output``.
    """
    import json

    from driftloop.blueprints import get_blueprint
    from driftloop.settings import get_settings
    from driftloop.training.gate import gate as decide

    # The run's parameter overrides the deployment-wide default for this gate only.
    settings = get_settings().model_copy(update={"min_improvement": min_improvement})
    decision = decide(
        model_name,
        version,
        get_blueprint(blueprint),
        test.path,
        test_fingerprint,
        settings,
        significance=significance,
        alpha=significance_alpha,
    )
    with open(report.path, "w", encoding="utf-8") as handle:
        json.dump(decision.to_dict(), handle, default=str)
    report.metadata.update({"decision": decision.outcome, "reason": decision.reason})
    return decision.outcome
