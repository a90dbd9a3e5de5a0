"""Register: create a registry version from the training run, with lineage tags."""

from components._base import driftloop_component


@driftloop_component
def register(
    model_name: str,
    blueprint: str,
    run_id: str,
    fingerprints: str,
    test_metrics: str,
    dataset: str,
    data_source: str,
    label_mapping: str,
) -> str:
    """Returns the new version number (a string, as MLflow has it)."""
    import json

    from driftloop.blueprints import get_blueprint
    from driftloop.lineage import TAG_SPLIT_SCHEME, data_tags, version_tags
    from driftloop.registry import register_from_run

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
    return json.loads(register_from_run(model_name, run_id, json.dumps(tags)))["version"]
