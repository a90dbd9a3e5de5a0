"""The CNN behind the sklearn API: string labels, per-epoch staged scores for Hyperband,
the wall-clock cap, pickling, and the shared MLflow logging (pyfunc on base64 PNGs)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from driftloop.blueprints import get_blueprint
from driftloop.datasets.images import load_image_folder
from driftloop.training.staged import evaluate, staging_of
from tests.unit.test_vision_data import write_shapes_folder

# torch's first use alone takes seconds on a loaded CPU
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = write_shapes_folder(tmp_path_factory.mktemp("vision") / "shapes", per_class=24)
    frame = load_image_folder(root).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame.iloc[:54].reset_index(drop=True), frame.iloc[54:].reset_index(drop=True)


@pytest.fixture(scope="module")
def blueprint():
    return get_blueprint("vision", epochs=3, width=8)


def test_cnn_trains_epoch_by_epoch_for_the_pruner(blueprint, shapes):
    train, val = shapes
    cnn = blueprint.candidates(seed=0)["cnn"]
    staging = staging_of(cnn, folds=1)
    # epochs are the resource: the trial is scored after epochs 1, 2 and 3
    assert (staging.kind, staging.parameter, staging.values) == (
        "warm_start",
        "max_iter",
        (1, 2, 3),
    )
    reported: list[tuple[int, float]] = []
    metrics = evaluate(cnn, blueprint, [(train, val)], report=lambda v, s: reported.append((s, v)))
    assert [step for step, _ in reported] == [1, 2, 3]
    assert metrics["accuracy"] == reported[-1][1]
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_cnn_string_labels_pickle_and_inputs(blueprint, shapes):
    train, val = shapes
    cnn = blueprint.candidates(seed=0)["cnn"].set_params(max_iter=2)
    cnn.fit(blueprint.features(train), blueprint.targets(train))
    assert cnn.epochs_done_ == 2 and len(cnn.loss_curve_) == 2
    assert list(cnn.classes_) == ["circle", "cross", "square"]
    probabilities = cnn.predict_proba(blueprint.features(val))
    assert probabilities.shape == (len(val), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(cnn.predict(blueprint.features(val))) <= set(cnn.classes_)
    # the pyfunc input (base64 PNGs) gives what the pixel array gives
    example = blueprint.input_example(val)
    np.testing.assert_allclose(cnn.predict_proba(example), probabilities[:2], rtol=1e-5, atol=1e-6)
    restored = pickle.loads(pickle.dumps(cnn))
    np.testing.assert_allclose(restored.predict_proba(blueprint.features(val)), probabilities)
    assert restored.embed(blueprint.features(val)).shape == (len(val), 128)
    # warm start: another fit continues to max_iter epochs in all
    cnn.set_params(warm_start=True, max_iter=3).fit(
        blueprint.features(train), blueprint.targets(train)
    )
    assert cnn.epochs_done_ == 3


def test_wall_clock_cap_stops_training(blueprint, shapes):
    train, _ = shapes
    cnn = blueprint.candidates(seed=0)["cnn"].set_params(max_iter=50, max_seconds=0.0)
    cnn.fit(blueprint.features(train), blueprint.targets(train))
    assert cnn.stopped_by_time_ and cnn.epochs_done_ == 1


def test_logged_model_loads_in_pyfunc_with_its_requirements(blueprint, shapes, tmp_path):
    import mlflow

    from driftloop.registry import scoped_tracking_uri
    from driftloop.training.model_logging import load_native, log_model

    train, val = shapes
    cnn = blueprint.candidates(seed=0)["cnn"].set_params(max_iter=1)
    cnn.fit(blueprint.features(train), blueprint.targets(train))
    with scoped_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        with mlflow.start_run() as run:
            log_model(cnn, name="model", input_example=blueprint.input_example(train))
        uri = f"runs:/{run.info.run_id}/model"
        loaded = mlflow.pyfunc.load_model(uri)
        example = blueprint.input_example(val)
        answer = loaded.predict(example)
        requirements = mlflow.artifacts.download_artifacts(
            f"{uri}/requirements.txt", dst_path=str(tmp_path)
        )
        native = load_native(uri)
    expected = cnn.predict_proba(example)
    assert answer["label"].tolist() == list(cnn.classes_[expected.argmax(axis=1)])
    np.testing.assert_allclose(answer[[f"proba_{c}" for c in cnn.classes_]].to_numpy(), expected)
    names = {line.split("==")[0].lower() for line in open(requirements).read().split()}
    assert {"torch", "pillow", "numpy", "scikit-learn"} <= names
    np.testing.assert_allclose(native.predict_proba(example), expected)


def test_shared_search_prunes_cnn_trials_on_epoch_scores(blueprint, shapes, tmp_path):
    """The shared Optuna search (Hyperband) gets one intermediate score per epoch."""
    import mlflow
    import optuna

    from driftloop.registry import scoped_tracking_uri
    from driftloop.training.search import StudySettings, search_candidate

    train, val = shapes
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with scoped_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        experiment = mlflow.set_experiment("vision-search")
        with mlflow.start_run():
            found = search_candidate(
                blueprint,
                "cnn",
                blueprint.candidates(seed=0)["cnn"],
                [(train, val)],
                StudySettings(
                    storage=storage,
                    study_name="vision-cnn",
                    experiment_id=experiment.experiment_id,
                    sampler="random",
                    pruner="hyperband",
                    n_trials=3,
                    seed=0,
                ),
            )
    study = optuna.load_study(study_name="vision-cnn", storage=storage)
    assert len(study.trials) == 3 and found.best_value is not None
    assert study.user_attrs["stages"] == 3 and study.user_attrs["pruner"] == "HyperbandPruner"
    for trial in study.trials:
        steps = sorted(trial.intermediate_values)
        assert steps and steps == list(range(1, len(steps) + 1))
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert steps == [1, 2, 3]
