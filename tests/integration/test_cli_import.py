"""``driftloop import`` end to end: a pipeline fitted here on the penguins table, pickled, imported.

Real everything: a private sqlite MLflow, the real smoke-serve (a ``driftloop
serve`` subprocess on loopback), the gate, the drift reference (alibi-detect).
The version must carry the training pipeline's lineage plus where it came
from, be scored on the split a trained challenger would be scored on, become
champion, and answer through the predictor's loader exactly as the pickled
model answers. Its data splits are listed by ``driftloop datasets``.
"""

from __future__ import annotations

import hashlib
import json
import math

import joblib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.cli import cli
from driftloop.datasets.tables import shipped_table
from driftloop.lineage import (
    TAG_BLUEPRINT,
    TAG_DATA_SOURCE,
    TAG_DECISION,
    TAG_DRIFT_REFERENCE,
    TAG_FLAVOUR,
    TAG_GIT_COMMIT,
    TAG_IMPORTED_FROM,
    TAG_METRIC_NAME,
    TAG_METRIC_VALUE,
    TAG_SPLIT_SCHEME,
    TAG_TEST_FINGERPRINT,
    split_fingerprint_tag,
)
from driftloop.ports import free_port
from driftloop.registry import CHAMPION, ModelRegistry
from driftloop.training import data_steps

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
NAME = "penguins-byo"


def penguin_classifier(frame: pd.DataFrame) -> Pipeline:
    prepare = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CATEGORICAL,
            ),
        ]
    )
    model = Pipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=500))])
    # fitted on every column but the target, as a user would: the model records all of them
    # (feature_names_in_), 'year' included though its transformer drops it
    return model.fit(frame.drop(columns=["species"]), frame["species"])


def test_an_imported_pipeline_is_gated_promoted_and_served(home, tmp_path, monkeypatch):
    # no predictor listens there: the rollout has nothing to wait for
    monkeypatch.setenv("DRIFTLOOP_PREDICTOR_PORT", str(free_port()))
    penguins, _ = shipped_table("penguins")
    csv = tmp_path / "penguins.csv"
    penguins.to_csv(csv, index=False)
    classifier = penguin_classifier(penguins)
    model_file = tmp_path / "model.joblib"
    joblib.dump(classifier, model_file)

    result = CliRunner().invoke(
        cli, ["import", NAME, "--model", str(model_file), "--data", str(csv), "--target", "species"]
    )
    assert result.exit_code == 0, result.output
    for shown in ("smoke-serve", "gate vs champion", "promote", "macro_f1", "champion"):
        assert shown in result.output, result.output

    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri)
    champion = registry.version_by_alias(NAME, CHAMPION)
    assert champion is not None and champion.version == "1"
    tags = champion.tags
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert tags[TAG_IMPORTED_FROM] == f"model.joblib sha256:{sha}"
    spec = BlueprintSpec.parse(tags[TAG_BLUEPRINT])
    assert (spec.name, spec.options["target"], spec.options["task"]) == (
        "tabular",
        "species",
        "classification",
    )
    assert tags[TAG_FLAVOUR] == "sklearn"
    assert tags[TAG_DATA_SOURCE] == str(csv)
    assert tags[TAG_DECISION] == "promote"
    assert tags[TAG_DRIFT_REFERENCE].endswith("drift_reference")
    assert tags[TAG_GIT_COMMIT]

    # the test split is the one the training pipeline makes of this table, and the score
    # recorded is the pickled model's own on it
    blueprint, dataset, _ = get_blueprint(spec).prepare(None, str(csv))
    split_dir = tmp_path / "splits"
    data_steps.ingest(tmp_path / "data.parquet", blueprint, dataset, str(csv))
    fingerprints = data_steps.split(tmp_path / "data.parquet", split_dir, blueprint, seed=42)
    for split in ("train", "val", "test"):
        assert tags[split_fingerprint_tag(split)] == fingerprints[split]
    assert tags[TAG_TEST_FINGERPRINT] == fingerprints["test"]
    assert tags[TAG_SPLIT_SCHEME] == fingerprints["scheme"]
    test = pd.read_parquet(split_dir / "test.parquet")
    # missing cells as the CSV reader gave them when the model was fitted: parquet brings a
    # missing text back as None, which SimpleImputer does not count as missing
    test = test.where(test.notna(), np.nan)
    expected = blueprint.score(classifier, test)["macro_f1"]
    assert tags[TAG_METRIC_NAME] == "macro_f1"
    assert math.isclose(float(tags[TAG_METRIC_VALUE]), expected, rel_tol=1e-9)

    # the predictor's loader serves it: the wire takes the model's columns only, and the
    # answers are the pickled model's
    from driftloop.serving.loader import load

    loaded = load(f"models:/{NAME}@{CHAMPION}", uri)
    assert loaded.version == "1"
    columns = list(classifier.feature_names_in_)
    assert [spec.name for spec in loaded.codec.inputs] == columns
    rows = test[columns].head(12)
    instances = json.loads(rows.to_json(orient="records"))  # NaN travels as null
    answer = loaded.codec.predict(loaded.codec.decode_v1(instances))
    assert answer.labels == [str(label) for label in classifier.predict(rows)]
    served = np.array(
        [[i["probabilities"][c] for c in classifier.classes_] for i in answer.instances]
    )
    assert np.allclose(served, classifier.predict_proba(rows), atol=1e-6)

    # its splits are dataset versions MLflow has seen, used by this version
    listed = CliRunner().invoke(cli, ["datasets", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    by_name = {record["name"]: record for record in json.loads(listed.output)}
    assert set(by_name) == {"file-train", "file-val", "file-test"}
    test_record = by_name["file-test"]
    assert test_record["rows"] == len(test)
    assert test_record["versions"] == [f"{NAME}/1"]
    assert test_record["uses"][0]["context"] == "evaluation"
    assert test_record["source"] == str(csv)
