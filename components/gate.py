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

    from driftloop.step_host import run_step

    decision = run_step(
        "driftloop.steps:gate_decision",
        model_name,
        version,
        blueprint,
        test.path,
        test_fingerprint,
        min_improvement,
        significance,
        significance_alpha,
    )
    with open(report.path, "w", encoding="utf-8") as handle:
        json.dump(decision, handle, default=str)
    report.metadata.update({"decision": decision["outcome"], "reason": decision["reason"]})
    return decision["outcome"]
