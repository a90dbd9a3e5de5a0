"""The work of the pipeline steps whose component does more than call one function.

A component (``components/``) stays a thin wrapper that hands its inputs to one
function through :func:`driftloop.step_host.run_step`; where the step is a few
calls (read the settings, build the blueprint, then act), those calls live here,
so they run in the warm step host under kfp.local and in the task's own process
on a cluster. Each takes and returns plain values (paths, strings, dicts): the
component writes its own artifacts and metadata.
"""

from __future__ import annotations


def merge_feedback_rows(data_path: str, merged_path: str, blueprint: str, model_name: str) -> dict:
    """The ``merge-feedback`` step."""
    from driftloop.settings import get_settings
    from driftloop.training.data_steps import merge_feedback as merge

    store_url = get_settings().resolved_store_url
    return merge(data_path, merged_path, blueprint, model_name, store_url)


def promote_and_roll_out(model_name: str, version: str) -> str:
    """The ``promote`` step."""
    import json

    from driftloop.deploy import get_deployer
    from driftloop.registry import promote_version
    from driftloop.settings import get_settings

    promoted = json.loads(promote_version(model_name, version))
    rollout = get_deployer(get_settings()).roll_out(model_name, version)
    promoted["rollout"] = rollout.to_dict() if hasattr(rollout, "to_dict") else str(rollout)
    return json.dumps(promoted, default=str)


def floor_check(model_name: str, version: str, blueprint: str) -> dict:
    """The ``promote-challenger`` step."""
    from driftloop.blueprints import get_blueprint
    from driftloop.training.gate import admit_challenger

    return admit_challenger(model_name, version, get_blueprint(blueprint))


def gate_decision(
    model_name: str,
    version: str,
    blueprint: str,
    test_path: str,
    test_fingerprint: str,
    min_improvement: float,
    significance: str,
    significance_alpha: float,
) -> dict:
    """The ``gate`` step: the decision as a dict ("outcome", "reason", the scores)."""
    from driftloop.blueprints import get_blueprint
    from driftloop.settings import get_settings
    from driftloop.training.gate import gate

    # The run's parameter overrides the deployment-wide default for this gate only.
    settings = get_settings().model_copy(update={"min_improvement": min_improvement})
    decision = gate(
        model_name,
        version,
        get_blueprint(blueprint),
        test_path,
        test_fingerprint,
        settings,
        significance=significance,
        alpha=significance_alpha,
    )
    return decision.to_dict()


def register_version(
    model_name: str,
    blueprint: str,
    run_id: str,
    fingerprints: str,
    test_metrics: str,
    dataset: str,
    data_source: str,
    label_mapping: str,
) -> str:
    """The ``register`` step."""
    import json

    from driftloop.blueprints import get_blueprint
    from driftloop.lineage import TAG_SPLIT_SCHEME, data_tags, version_tags
    from driftloop.registry import register_from_run
    from driftloop.training.candidate_plot import log_candidate_plot

    instance = get_blueprint(blueprint)
    primary = instance.primary_metric
    splits = json.loads(fingerprints)
    # the blueprint instance and flavour: what the predictor, monitor and gate resolve
    tags = version_tags(
        splits.get("dataset", ""),
        {name: splits[name] for name in ("train", "val", "test") if name in splits},
        primary,
        json.loads(test_metrics)[primary],
        "test",
        blueprint=instance.spec,
        flavour=instance.flavour,
    ) | data_tags(dataset, data_source, label_mapping)
    if splits.get("scheme"):
        # lets a later gate tell which of its test rows this version trained on
        tags[TAG_SPLIT_SCHEME] = splits["scheme"]
    version = json.loads(register_from_run(model_name, run_id, json.dumps(tags)))["version"]
    # the candidate comparison as a picture, beside the version's model on its run
    log_candidate_plot(run_id, primary, instance.greater_is_better)
    return version


def smoke_serve_samples(
    model_name: str, version: str, blueprint: str, timeout_s: float, test_path: str
) -> dict:
    """The ``smoke-serve`` step."""
    import json

    import pandas as pd

    from driftloop.blueprints import get_blueprint
    from driftloop.serving.smoke import smoke_serve

    example = get_blueprint(blueprint).input_example(pd.read_parquet(test_path))
    samples = json.loads(example.to_json(orient="records", date_format="iso"))
    return smoke_serve(f"models:/{model_name}/{version}", samples, timeout_s=timeout_s)


def rollback_or_retrain(model_name: str, reason: str, window_hours: float) -> dict:
    """The ``rollback`` step: {"decision": "rolled_back" | "retrain", ...why}."""
    import json
    from datetime import UTC, datetime

    from driftloop.deploy import get_deployer
    from driftloop.promotion import should_roll_back
    from driftloop.registry import PREVIOUS_CHAMPION, ModelRegistry, rollback_model
    from driftloop.settings import get_settings

    registry = ModelRegistry()
    if not registry.exists(model_name):
        return {"decision": "retrain", "why": f"no registered model named {model_name!r}"}
    promoted_at = registry.promoted_at(model_name)
    if not should_roll_back(reason, promoted_at, datetime.now(UTC), window_hours * 3600.0):
        why = f"{reason} with the champion promoted at {promoted_at} is not a rollback case"
        return {"decision": "retrain", "why": why}
    if registry.version_by_alias(model_name, PREVIOUS_CHAMPION) is None:
        return {"decision": "retrain", "why": "no previous-champion to restore"}
    result = json.loads(rollback_model(model_name, reason))
    rollout = get_deployer(get_settings()).roll_out(model_name, result["champion"])
    result["rollout"] = rollout.to_dict() if hasattr(rollout, "to_dict") else str(rollout)
    return {"decision": "rolled_back", **result}
