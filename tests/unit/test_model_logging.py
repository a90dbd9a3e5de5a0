"""model_logging: the pyfunc output, the pinned requirements, the round trip through MLflow.

The clean-environment check (a fresh virtualenv with only mlflow and the
model's requirements) is tests/integration/test_portable_model.py; here a
subprocess with driftloop's heavy dependencies blocked guards the cheap part
of it: loading the pyfunc flavour imports only the shipped, light code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from driftloop.blueprints.estimators import StringLabelXGBClassifier
from driftloop.blueprints.text import TextNormalizer
from driftloop.training import model_logging
from driftloop.training.model_logging import (
    load_native,
    log_model,
    pinned_requirements,
    predictor_output,
)

TEXTS = [
    "produto ótimo, chegou rápido",
    "não recomendo, péssimo",
    "excelente, recomendo muito",
    "horrível, nunca chegou",
    "great film, loved it",
    "dull and boring movie",
] * 4
LABELS = ["positive", "negative", "positive", "negative", "positive", "negative"] * 4
HEAVY = ("kserve", "kfp", "kubernetes", "torch", "alibi_detect", "transformers", "optuna")


def text_model(classifier=None) -> Pipeline:
    model = Pipeline(
        [
            ("normalize", TextNormalizer()),
            ("tfidf", TfidfVectorizer()),
            ("classifier", classifier or LogisticRegression()),
        ]
    )
    return model.fit(TEXTS, LABELS)


def frame(texts) -> pd.DataFrame:
    return pd.DataFrame({"text": list(texts)})


def test_classifier_output_is_label_and_one_probability_column_per_class():
    model = text_model()
    out = predictor_output(model, frame(TEXTS[:2]))
    assert list(out.columns) == ["label", "proba_negative", "proba_positive"]
    assert list(out["label"]) == list(model.predict(TEXTS[:2]))
    np.testing.assert_allclose(
        out[["proba_negative", "proba_positive"]], model.predict_proba(TEXTS[:2])
    )


def test_regressor_and_probability_free_classifier_outputs():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    regression = predictor_output(LinearRegression().fit(X, [0.0, 2.0, 4.0, 6.0]), X)
    assert list(regression.columns) == ["prediction"]
    np.testing.assert_allclose(regression["prediction"], [0.0, 2.0, 4.0, 6.0], atol=1e-9)
    margins = predictor_output(text_model(LinearSVC()), frame(TEXTS[:2]))
    assert list(margins.columns) == ["label"]
    assert list(margins["label"]) == ["positive", "negative"]


def test_requirements_pin_what_the_pickle_imports_at_training_versions():
    logreg = pinned_requirements(text_model())
    names = {line.split("==")[0].lower() for line in logreg}
    assert all("==" in line for line in logreg)
    assert names == {"cloudpickle", "numpy", "pandas", "scikit-learn", "scipy"}
    assert f"numpy=={metadata.version('numpy')}" in logreg

    xgb = pinned_requirements(text_model(StringLabelXGBClassifier(n_estimators=3, n_jobs=1)))
    (provider,) = metadata.packages_distributions()["xgboost"]  # xgboost-cpu here
    assert f"{provider}=={metadata.version(provider)}" in xgb
    assert not any(line.split("==")[0] in ("driftloop", "mlflow") for line in xgb)
    if provider == "xgboost-cpu":  # the 470 MB CUDA build is never asked for
        assert not any(line.startswith("xgboost==") for line in xgb)


@pytest.fixture
def logged(home):
    import mlflow

    model = text_model(StringLabelXGBClassifier(n_estimators=5, n_jobs=1))
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    mlflow.set_experiment("model-logging")
    with mlflow.start_run() as run:
        info = log_model(model, name="model", input_example=frame(TEXTS[:2]))
    return model, info, run.info.run_id


def test_log_model_round_trip(logged):
    import mlflow
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    model, info, run_id = logged
    local = Path(download_artifacts(info.model_uri))
    meta = Model.load(local)
    assert meta.flavors["python_function"]["loader_module"] == model_logging.__name__
    assert meta.flavors["sklearn"]["serialization_format"] == "cloudpickle"
    assert (local / "code" / "driftloop" / "blueprints" / "estimators.py").is_file()
    assert not list(local.rglob("__pycache__"))
    assert meta.signature.inputs.input_names() == ["text"]
    assert meta.signature.outputs.input_names() == ["label", "proba_negative", "proba_positive"]
    requirements = (local / "requirements.txt").read_text().split()
    assert requirements[0] == f"mlflow=={mlflow.__version__}"

    texts = frame(["chegou rápido, ótimo", "péssimo, não recomendo"])
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    pd.testing.assert_frame_equal(pyfunc.predict(texts), predictor_output(model, texts))
    assert type(pyfunc.get_raw_model()) is Pipeline

    path_before = list(sys.path)
    native = load_native(f"runs:/{run_id}/model")
    assert sys.path == path_before  # a server that reloads must not grow sys.path
    assert isinstance(native.steps[-1][1], StringLabelXGBClassifier)  # the installed class
    np.testing.assert_allclose(native.predict_proba(texts), model.predict_proba(texts))


def test_load_native_reads_models_logged_with_plain_mlflow_sklearn(home):
    import mlflow
    import mlflow.sklearn

    model = text_model()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("model-logging-plain")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle", pip_requirements=[]
        )
    native = load_native(f"runs:/{run.info.run_id}/model", tracking_uri=uri)
    assert list(native.predict(TEXTS[:2])) == list(model.predict(TEXTS[:2]))


def test_pyfunc_loads_the_shipped_code_without_driftloops_heavy_dependencies(logged, tmp_path):
    from mlflow.artifacts import download_artifacts

    _, info, _ = logged
    local = download_artifacts(info.model_uri, dst_path=str(tmp_path))
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {HEAVY!r}:
                    raise ModuleNotFoundError(f"blocked: {{name}}")
        sys.meta_path.insert(0, Block())
        import mlflow.pyfunc, pandas as pd
        model = mlflow.pyfunc.load_model({local!r})
        out = model.predict(pd.DataFrame({{"text": ["ótimo", "péssimo"]}}))
        import os, driftloop
        where = os.path.realpath(driftloop.__file__)
        print(json.dumps({{"columns": list(out.columns), "driftloop": where}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["columns"] == ["label", "proba_negative", "proba_positive"]
    assert answer["driftloop"].startswith(str(Path(local).resolve() / "code" / "driftloop"))
