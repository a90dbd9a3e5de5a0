"""``driftloop import``: the checks that stop a bad model or table before MLflow is touched.

Real models fitted here on the shipped penguins table (pickled with joblib or
saved as an MLflow model directory); every bad input ends in one line naming
the option, and no MLflow database is created.
"""

from __future__ import annotations

import hashlib
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.tabular.imported import adopt_table_model
from driftloop.cli import cli
from driftloop.datasets.tables import shipped_table
from driftloop.training.import_model import (
    ModelImportError,
    check_fitted_estimator,
    file_sha256,
    read_model,
)

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


def penguin_pipeline(estimator, numeric=NUMERIC, categorical=CATEGORICAL) -> Pipeline:
    prepare = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return Pipeline([("prepare", prepare), ("model", estimator)])


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame, _ = shipped_table("penguins")
    return frame


@pytest.fixture(scope="module")
def classifier(penguins) -> Pipeline:
    model = penguin_pipeline(LogisticRegression(max_iter=500))
    return model.fit(penguins[NUMERIC + CATEGORICAL], penguins["species"])


@pytest.fixture
def files(tmp_path, penguins, classifier):
    """The penguins table as a CSV and a writer of model files next to it."""
    csv = tmp_path / "penguins.csv"
    penguins.to_csv(csv, index=False)

    def dump(model, name: str = "model.joblib"):
        path = tmp_path / name
        joblib.dump(model, path)
        return str(path)

    return str(csv), dump


def run_import(*args: str):
    return CliRunner().invoke(cli, ["import", *args])


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("driftloop: error: "), lines[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- reading a model file ----------------------------------------------------------
def test_pickle_and_joblib_files_load_and_hash(tmp_path, classifier, penguins):
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(classifier))
    for path in (pickled, tmp_path / "model.joblib"):
        if path.suffix == ".joblib":
            joblib.dump(classifier, path)
        read = read_model(path)
        assert read.kind == "pickle"
        assert read.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert read.imported_from == f"{path.name} sha256:{read.sha256}"
        rows = penguins[NUMERIC + CATEGORICAL].head(20)
        assert list(read.model.predict(rows)) == list(classifier.predict(rows))


def test_mlflow_model_directory_loads_through_its_sklearn_flavour(tmp_path, classifier, penguins):
    import mlflow.sklearn

    directory = tmp_path / "mlflow-model"
    # requirements given: MLflow would otherwise infer them in a subprocess (seconds)
    mlflow.sklearn.save_model(
        classifier, directory, serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )
    read = read_model(directory)
    assert read.kind == "mlflow"
    rows = penguins[NUMERIC + CATEGORICAL].head(20)
    assert list(read.model.predict(rows)) == list(classifier.predict(rows))
    before = read.sha256
    (directory / "extra.txt").write_text("changed")
    assert file_sha256(directory) != before  # the hash covers every file of the directory


def test_mlflow_directory_without_sklearn_flavour_is_refused(tmp_path):
    directory = tmp_path / "pyfunc-only"
    directory.mkdir()
    (directory / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: somewhere\n    python_version: 3.11\n"
    )
    with pytest.raises(
        ModelImportError, match=r"^--model: .* no sklearn flavour .*python_function"
    ):
        read_model(directory)
    plain = tmp_path / "plain-dir"
    plain.mkdir()
    with pytest.raises(ModelImportError, match=r"^--model: .* without an MLmodel file"):
        read_model(plain)


def test_unreadable_and_foreign_pickles_name_the_option(tmp_path):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"this is not a pickle at all")
    with pytest.raises(ModelImportError, match=r"^--model: cannot read garbage.pkl as a pickle"):
        read_model(garbage)
    # a protocol-0 pickle naming a class of a module that is not installed
    foreign = tmp_path / "foreign.pkl"
    foreign.write_bytes(b"cdriftloop_no_such_module\nModel\n(tR.")
    with pytest.raises(ModelImportError, match=r"needs the module 'driftloop_no_such_module'"):
        read_model(foreign)


def test_only_fitted_estimators_pass(classifier):
    check_fitted_estimator(classifier, "model.pkl")
    with pytest.raises(
        ModelImportError, match=r"^--model: model.pkl holds a dict, not an estimator"
    ):
        check_fitted_estimator({"weights": [1, 2]}, "model.pkl")
    unfitted = penguin_pipeline(LogisticRegression())
    with pytest.raises(ModelImportError, match=r"^--model: model.pkl holds an unfitted Pipeline"):
        check_fitted_estimator(unfitted, "model.pkl")


# --- the model behind the schema serving needs ------------------------------------------
def test_adopted_model_serves_only_its_own_columns_and_answers_the_same(classifier, penguins):
    blueprint = get_blueprint("tabular", target="species", task="classification")
    features = blueprint.features(penguins)
    adopted = adopt_table_model(classifier, features)
    assert adopted.steps[0][1].columns_ == NUMERIC + CATEGORICAL  # 'year' is not served
    codec = blueprint.codec(adopted)  # what the predictor builds: the schema is found
    assert [spec.name for spec in codec.inputs] == NUMERIC + CATEGORICAL
    rows = features.head(30)
    assert list(adopted.predict(rows)) == list(classifier.predict(rows))
    assert np.allclose(adopted.predict_proba(rows), classifier.predict_proba(rows))
    assert adopt_table_model(adopted, features) is adopted  # already a driftloop table model


# --- the CLI: one line, naming the option, before MLflow -----------------------------
def test_bad_model_files_stop_with_one_line(home, files, classifier):
    csv, dump = files
    one_line_error(
        run_import("m", "--model", "/nonexistent/model.pkl", "--data", csv, "--target", "species"),
        "--model: no such file or directory",
    )
    one_line_error(
        run_import("m", "--model", dump({"not": "a model"}), "--data", csv, "--target", "species"),
        "--model:",
        "holds a dict, not an estimator",
    )
    unfitted = dump(penguin_pipeline(LogisticRegression()), "unfitted.joblib")
    one_line_error(
        run_import("m", "--model", unfitted, "--data", csv, "--target", "species"),
        "--model: unfitted.joblib holds an unfitted Pipeline",
    )
    assert not (home / "mlflow.db").exists()


def test_bad_tables_and_targets_stop_with_one_line(home, files, classifier, penguins):
    csv, dump = files
    model = dump(classifier)
    one_line_error(
        run_import("m", "--model", model, "--data", csv, "--target", "specie"),
        "--target: no column 'specie'",
        "did you mean 'species'",
    )
    # the model predicts species; island is a column of classes it never predicts
    one_line_error(
        run_import("m", "--model", model, "--data", csv, "--target", "island"),
        "--target: the model predicts Adelie, Chinstrap, Gentoo",
        "column 'island' holds Biscoe, Dream, Torgersen",
    )
    one_line_error(
        run_import(
            "m", "--model", model, "--data", csv, "--target", "year", "--task", "regression"
        ),
        "--task: the model is a classifier",
        "use --task classification",
    )
    regressor = penguin_pipeline(LinearRegression()).fit(
        penguins[NUMERIC + CATEGORICAL], penguins["year"]
    )
    one_line_error(
        run_import(
            "m", "--model", dump(regressor, "r.joblib"), "--data", csv, "--target", "species"
        ),
        "--task: the target 'species' is scored as classes",
    )
    assert not (home / "mlflow.db").exists()


def test_a_model_needing_columns_the_table_lacks_names_them(home, files, penguins, tmp_path):
    csv, dump = files
    renamed = penguins.rename(columns={"bill_length_mm": "beak_mm", "sex": "gender"})
    model = penguin_pipeline(
        LogisticRegression(max_iter=500),
        numeric=["beak_mm", *NUMERIC[1:]],
        categorical=["island", "gender"],
    ).fit(renamed.drop(columns=["species"]), renamed["species"])
    one_line_error(
        run_import("m", "--model", dump(model), "--data", csv, "--target", "species"),
        "--data: the model takes column(s) 'beak_mm', 'gender' that the table lacks",
    )
    # fitted on a bare array: it recorded no column names and fails on the table's rows
    bare = LogisticRegression(max_iter=500).fit(
        penguins[NUMERIC].fillna(0).to_numpy()[:, :3], penguins["species"]
    )
    one_line_error(
        run_import("m", "--model", dump(bare, "bare.joblib"), "--data", csv, "--target", "species"),
        "--model: the model failed on the --data rows",
    )
    assert not (home / "mlflow.db").exists()


def test_a_regressor_is_scored_as_served_behind_the_schema():
    from sklearn.linear_model import Ridge

    from driftloop.training.import_model import check_task, score_on

    diabetes, _ = shipped_table("diabetes")
    blueprint = get_blueprint("tabular", target="progression", task="regression")
    features = blueprint.features(diabetes)
    model = make_pipeline(StandardScaler(), Ridge()).fit(features, diabetes["progression"])
    check_task(blueprint, model, "")
    adopted = adopt_table_model(model, features)
    scores = score_on(blueprint, adopted, diabetes)
    error = model.predict(features) - diabetes["progression"].to_numpy()
    assert scores["rmse"] == pytest.approx(float(np.sqrt(np.mean(error**2))))
    with pytest.raises(ModelImportError, match=r"^--task: the target 'progression' is scored"):
        classes = get_blueprint("tabular", target="progression", task="classification")
        check_task(classes, model, "given")
