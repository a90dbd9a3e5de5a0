"""``driftloop report stability``: a real MLflow registry in tmp, a real version, real refits.

One classifier of the penguins' island (logistic regression; species and
measurements separate the islands only in part, so scores move) is trained and registered the
way the training pipeline registers it (lineage, data and split-scheme tags,
``@champion``), without the pipeline's other steps. The report then rebuilds
its rows from those tags, refits it 3 + 3 + 5 times, and the test reads the
numbers back from what the command printed and from the version's run.

Version 3 is a soft-voting ensemble (``training.ensembles``) logged with
``model_logging.log_model``: it loads back through ``mlflow.pyfunc`` and its
stability report refits the whole ensemble. One registry serves every test
here (creating an MLflow database costs seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.cli import cli

pytestmark = pytest.mark.slow

MODEL = "penguin-island"


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory):
    """DRIFTLOOP_HOME + MLFLOW_TRACKING_URI in tmp, one version registered as @champion."""
    home = tmp_path_factory.mktemp("stability-home")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFTLOOP_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for name in ("DRIFTLOOP_TRACKING_URI", "DRIFTLOOP_STORE_URL", "DRIFTLOOP_API_TOKEN"):
            patch.delenv(name, raising=False)
        from driftloop.settings import Settings, get_settings

        get_settings.cache_clear()
        ensemble = _register_penguins(Settings(home=home), uri)
        yield home, uri, ensemble
        get_settings.cache_clear()


def _register_penguins(settings, uri: str) -> dict:
    import mlflow

    from driftloop.blueprints import get_blueprint
    from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_SPLIT_SCHEME, data_tags, version_tags
    from driftloop.registry import ModelRegistry, scoped_tracking_uri
    from driftloop.training.candidates import ensure_experiment, train_candidates
    from driftloop.training.ensembles import SOFT_VOTING, voting_ensemble
    from driftloop.training.model_logging import log_model
    from driftloop.training.splits import split_frame

    blueprint, dataset, _ = get_blueprint("tabular", target="island").prepare("penguins", None)
    frame = blueprint.load(dataset, None)
    splits = split_frame(frame, seed=42, label_column=blueprint.class_column)
    fingerprints = {**splits.fingerprints, "scheme": str(splits.scheme)}
    with scoped_tracking_uri(uri):
        result = train_candidates(
            blueprint,
            splits.train,
            splits.val,
            seed=42,
            experiment="stability-tests",
            settings=settings,
            candidates=["logistic_regression"],
            fingerprints=fingerprints,
        )
    tags = version_tags(
        "test",
        splits.fingerprints,
        blueprint.primary_metric,
        result.val_metrics[blueprint.primary_metric],
        "val",
        blueprint=blueprint.spec,
        flavour=blueprint.flavour,
    ) | data_tags(dataset)
    tags[TAG_SPLIT_SCHEME] = str(splits.scheme)
    registry = ModelRegistry(uri)
    version = registry.register(MODEL, result.run_id, tags=tags)
    registry.set_alias(MODEL, "champion", version)
    # a second version without data tags: its rows cannot be rebuilt
    registry.register(
        MODEL, result.run_id, tags={k: v for k, v in tags.items() if ".data." not in k}
    )

    # version 3: a soft vote of two differently regularised logistic regressions
    members = {
        "logistic_regression": result.model,
        "strong_l2": blueprint.candidates(42)["logistic_regression"].set_params(model__C=0.05),
    }
    members["strong_l2"].fit(blueprint.features(splits.train), blueprint.targets(splits.train))
    vote = voting_ensemble(list(members.items()), voting="soft")
    with scoped_tracking_uri(uri):
        with mlflow.start_run(
            experiment_id=ensure_experiment("stability-tests", settings),
            tags={TAG_BEST_CANDIDATE: SOFT_VOTING},
        ) as run:
            log_model(vote, name="model", input_example=blueprint.input_example(splits.train))
    registry.register(MODEL, run.info.run_id, tags=tags)
    return {"model": vote, "blueprint": blueprint, "val": splits.val}


def stability(*args: str):
    return CliRunner().invoke(cli, ["report", "stability", *args])


def test_report_refits_and_logs_on_the_run(registry_home, tmp_path):
    from mlflow import MlflowClient

    from driftloop.registry import ModelRegistry

    _, uri, _ = registry_home
    png = tmp_path / "plots" / "penguins.png"
    result = stability(
        MODEL, "--splits", "3", "--seeds", "3", "--param", "C", "--points", "4", "--out", str(png)
    )
    assert result.exit_code == 0, result.output
    assert "splits" in result.output and "seeds" in result.output
    assert "sweep of model__C" in result.output
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    version = ModelRegistry(uri).version_by_alias(MODEL, "champion")
    client = MlflowClient(tracking_uri=uri)
    logged = {a.path for a in client.list_artifacts(version.run_id, "stability")}
    assert logged == {
        "stability/stability.json",
        "stability/stability.csv",
        "stability/stability.png",
    }
    folder = client.download_artifacts(version.run_id, "stability", str(tmp_path / "logged"))
    report = json.loads((Path(folder) / "stability.json").read_text())
    assert report["model"] == MODEL and report["version"] == version.version
    assert report["candidate"] == "logistic_regression" and report["metric"] == "macro_f1"
    assert report["seeds"] == [42, 43, 44]
    for key, count in (("split_scores", 3), ("seed_scores", 3), ("param_scores", 5)):
        scores = report[key]
        assert len(scores) == count and all(0.0 <= s <= 1.0 for s in scores), (key, scores)
    # resampled splits hold different rows: their scores are not all one number
    assert len(set(report["split_scores"])) > 1
    # C swept geometrically over the tuning space's range, 0.01 .. 100, plus the version's own
    assert report["param"] == "model__C" and report["param_current"] == 1.0
    assert report["param_values"] == pytest.approx([0.01, 0.2154, 1.0, 4.6416, 100.0], rel=1e-3)
    assert "this version" in result.output
    # a C of 0.01 regularises the classifier far more than 100 does
    assert report["param_scores"][0] < report["param_scores"][-1]
    summary = {row["analysis"]: row for row in report["summary"]}
    assert summary["seeds"]["runs"] == 3
    assert summary["splits"]["min"] <= summary["splits"]["mean"] <= summary["splits"]["max"]
    # the table printed is the one logged
    assert f"{summary['splits']['mean']:.4f}" in result.output


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["nobody"], "NAME: no registered model named 'nobody'"),
        ([f"{MODEL}@challenger"], "NAME: model 'penguin-island' has no version with alias"),
        ([f"{MODEL}@nonsense"], "NAME: unknown alias 'nonsense'"),
        ([f"{MODEL}/9"], "NAME: model 'penguin-island' has no version '9'"),
        ([f"{MODEL}/2"], "has no driftloop.data.dataset or driftloop.data.source tag"),
        ([MODEL, "--param", "gamma"], "--param: 'gamma' is not tunable in candidate"),
        ([MODEL, "--splits", "1"], "--splits"),
    ],
)
def test_errors_are_one_line_naming_the_argument(registry_home, tmp_path, arguments, needle):
    result = stability(*arguments, "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert needle in result.stderr, result.stderr
    if not needle.startswith("--splits"):  # click's own usage message has more lines
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("driftloop: error: ")
    assert not (tmp_path / "x.png").exists()


def test_a_logged_ensemble_loads_back_through_pyfunc(registry_home):
    import mlflow

    from driftloop.registry import scoped_tracking_uri
    from driftloop.training.model_logging import load_native

    _, uri, ensemble = registry_home
    blueprint, val, model = ensemble["blueprint"], ensemble["val"], ensemble["model"]
    with scoped_tracking_uri(uri):
        loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}/3")
    features = blueprint.features(val)
    answer = loaded.predict(features)
    classes = [str(c) for c in model.classes_]
    assert list(answer.columns) == ["label", *(f"proba_{c}" for c in classes)]
    assert (answer["label"].to_numpy() == model.predict(features)).all()
    assert blueprint.score(loaded.get_raw_model(), val) == pytest.approx(
        blueprint.score(model, val)
    )

    # the predictor's path: the sklearn flavour (load_native), then the blueprint's codec
    native = load_native(f"models:/{MODEL}/3", uri)
    codec = blueprint.codec(native)
    rows = features.head(3)
    answer = codec.predict(codec.decode_v1(json.loads(rows.to_json(orient="records"))))
    assert answer.labels == list(model.predict(rows))
    assert all(set(i["probabilities"]) == set(classes) for i in answer.instances)


def test_stability_of_an_ensemble_version(registry_home, tmp_path):
    result = stability(
        f"{MODEL}/3", "--splits", "2", "--seeds", "2", "--out", str(tmp_path / "e.png"), "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["candidate"] == "soft_voting"
    assert len(report["split_scores"]) == 2 and len(report["seed_scores"]) == 2
    assert all(0.4 < s <= 1.0 for s in report["split_scores"] + report["seed_scores"])
    # an ensemble has no tuning space of its own: no sweep, and the report says so
    assert report["param"] is None and report["param_scores"] == []
    assert any("sweep skipped" in note for note in report["notes"])
