"""A registered model loads and serves where driftloop is not installed.

Each case trains a model the way training does (``train_candidates``, which
logs through ``model_logging.log_model``), registers it and makes it champion
in a private sqlite MLflow store. One clean virtualenv for the module (``venv``
without site packages) gets only ``mlflow==<training's version>`` and the
models' logged ``requirements.txt``, installed with pip from the package index
(downloads cached in ~/.cache/pip as usual). From that venv:

(a) ``mlflow.pyfunc.load_model("models:/NAME@champion")`` predicts the
    predictor's frame (label + one probability column per class, or
    ``prediction``), equal to what driftloop's own model returns, with
    driftloop imported from the code shipped inside the model;
(b) ``mlflow models serve --env-manager local`` answers ``/invocations``.

Another blueprint joins by adding a :class:`PortableCase` to ``CASES``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PIP_TIMEOUT_S = 420
SERVE_READY_TIMEOUT_S = 120
# what must not be importable in the clean venv: driftloop itself and its heavy deps
ABSENT = ("driftloop", "kserve", "kfp", "torch", "alibi_detect")


# --- cases ------------------------------------------------------------------------
@dataclass(frozen=True)
class PortableCase:
    id: str
    # (settings) -> TrainResult: trains and logs one model with train_candidates
    train: Callable
    # two input rows, as the model's input example has them
    inputs: pd.DataFrame
    # "classifier": label + proba_<class> columns; "regressor": a prediction column
    kind: str


POSITIVE = [
    "produto ótimo",
    "chegou rápido",
    "recomendo muito",
    "excelente qualidade",
    "bem embalado",
    "adorei",
    "a great film",
    "funny and moving",
]
NEGATIVE = [
    "não recomendo",
    "péssimo",
    "nunca chegou",
    "produto quebrado",
    "ninguém responde",
    "horrível",
    "a dull movie",
    "lifeless and boring",
]


def sentiment_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Small synthetic reviews: three phrases of one polarity each (no data files needed)."""
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        label = "positive" if i % 2 else "negative"
        phrases = rng.sample(POSITIVE if label == "positive" else NEGATIVE, 3)
        records.append({"id": str(i), "text": ", ".join(phrases), "label": label})
    return pd.DataFrame(records)


def train_sentiment_xgboost(settings):
    """The xgboost candidate: its pickle needs TextNormalizer, LeanTfidfVectorizer,
    StringLabelXGBClassifier (driftloop code) and xgboost (a pinned requirement)."""
    from driftloop.training.candidates import train_candidates

    frame = sentiment_frame()
    return train_candidates(
        "sentiment",
        frame.iloc[:240],
        frame.iloc[240:],
        seed=7,
        experiment="portable-sentiment",
        settings=settings,
        candidates=["xgboost"],
    )


def train_table(dataset: str, candidate: str, settings):
    """One tabular candidate on a shipped table (rows with ids; the task resolved from it)."""
    from driftloop.blueprints import get_blueprint
    from driftloop.datasets.tables import SHIPPED_TABLES
    from driftloop.training.candidates import train_candidates

    blueprint = get_blueprint("tabular", target=SHIPPED_TABLES[dataset][1])
    frame = blueprint.load(dataset, None).sample(frac=1.0, random_state=3)
    blueprint, _ = blueprint.resolve(frame)
    cut = int(len(frame) * 0.8)
    return train_candidates(
        blueprint,
        frame.iloc[:cut],
        frame.iloc[cut:],
        seed=7,
        experiment=f"portable-{dataset}",
        settings=settings,
        candidates=[candidate],
    )


CASES = [
    PortableCase(
        id="sentiment-xgboost",
        train=train_sentiment_xgboost,
        inputs=pd.DataFrame({"text": ["produto ótimo, chegou rápido", "não recomendo, péssimo"]}),
        kind="classifier",
    ),
    # mixed numeric/categorical columns (TableSchema, ColumnTransformer, one-hot) -> species
    PortableCase(
        id="tabular-penguins-hgb",
        train=lambda settings: train_table("penguins", "hist_gradient_boosting", settings),
        inputs=pd.DataFrame(
            {
                "island": ["Biscoe", "Dream"],
                "bill_length_mm": [45.2, 39.5],
                "bill_depth_mm": [14.8, 18.9],
                "flipper_length_mm": [212.0, 190.0],
                "body_mass_g": [5200.0, 3800.0],
                "sex": ["female", "male"],
                "year": [2008, 2009],
            }
        ),
        kind="classifier",
    ),
    # an all-numeric regression with xgboost's regressor
    PortableCase(
        id="tabular-diabetes-xgboost",
        train=lambda settings: train_table("diabetes", "xgboost", settings),
        inputs=pd.DataFrame(
            {
                "age": [59.0, 48.0],
                "sex": [2.0, 1.0],
                "bmi": [32.1, 21.6],
                "bp": [101.0, 87.0],
                "s1": [157.0, 183.0],
                "s2": [93.2, 103.2],
                "s3": [38.0, 70.0],
                "s4": [4.0, 3.0],
                "s5": [4.8598, 3.8918],
                "s6": [87.0, 69.0],
            }
        ),
        kind="regressor",
    ),
]


# --- fixtures -----------------------------------------------------------------------
@dataclass(frozen=True)
class Registered:
    name: str
    uri: str  # models:/NAME@champion
    expected: pd.DataFrame  # driftloop's own answer on case.inputs
    requirements: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A private DRIFTLOOP_HOME with a sqlite MLflow store, for this module only."""
    from mlflow.tracking._tracking_service import utils as tracking

    from driftloop.settings import Settings, get_settings

    path = tmp_path_factory.mktemp("portable-home")
    tracking_uri = f"sqlite:///{path / 'mlflow.db'}"
    saved_global = tracking._tracking_uri  # training sets it; later modules must not see ours
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRIFTLOOP_HOME", str(path))
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        for name in ("DRIFTLOOP_TRACKING_URI", "DRIFTLOOP_STORE_URL", "DRIFTLOOP_API_TOKEN"):
            patch.delenv(name, raising=False)
        get_settings.cache_clear()
        yield Settings(home=path), tracking_uri
    tracking._tracking_uri = saved_global
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def registered(store, tmp_path_factory) -> dict[str, Registered]:
    from mlflow.artifacts import download_artifacts

    from driftloop.registry import CHAMPION, ModelRegistry, scoped_tracking_uri
    from driftloop.training.model_logging import load_native, predictor_output

    settings, tracking_uri = store
    registry = ModelRegistry(tracking_uri)
    models = {}
    for case in CASES:
        started = time.perf_counter()
        result = case.train(settings)
        name = f"portable-{case.id}"
        version = registry.register(name, result.run_id)
        registry.promote(name, version)
        uri = registry.model_uri(name, CHAMPION)
        native = load_native(uri, tracking_uri)
        local = tmp_path_factory.mktemp(f"model-{case.id}")
        with scoped_tracking_uri(tracking_uri):
            download_artifacts(artifact_uri=uri, dst_path=str(local))
        print(f"\n{case.id}: trained, logged, registered in {time.perf_counter() - started:.1f}s")
        models[case.id] = Registered(
            name=name,
            uri=uri,
            expected=predictor_output(native, case.inputs),
            requirements=local / "requirements.txt",
        )
    return models


def clean_env(tracking_uri: str, venv: Path) -> dict[str, str]:
    """This process's environment minus anything that would leak our packages in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


@pytest.fixture(scope="module")
def clean_venv(registered, store, tmp_path_factory) -> Path:
    """One virtualenv for the module: mlflow + every case's logged requirements."""
    import mlflow

    _, tracking_uri = store
    venv = tmp_path_factory.mktemp("clean") / "venv"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, capture_output=True
    )
    created = time.perf_counter()
    command = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        f"mlflow=={mlflow.__version__}",
    ]
    for model in registered.values():
        command += ["-r", str(model.requirements)]
    done = subprocess.run(
        command,
        env=clean_env(tracking_uri, venv),
        cwd=venv.parent,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"pip install failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    print(
        f"\nclean venv: created in {created - started:.1f}s, "
        f"pip install in {time.perf_counter() - created:.1f}s"
    )
    return venv


def run_in(venv: Path, tracking_uri: str, script: str, cwd: Path) -> dict:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        env=clean_env(tracking_uri, venv),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_answer(case: PortableCase, model: Registered, answer: pd.DataFrame) -> None:
    expected = model.expected
    assert list(answer.columns) == list(expected.columns)
    if case.kind == "classifier":
        probabilities = [c for c in expected.columns if c.startswith("proba_")]
        assert answer.columns[0] == "label" and len(probabilities) >= 2
        assert list(answer["label"]) == list(expected["label"])
        np.testing.assert_allclose(answer[probabilities], expected[probabilities], atol=1e-6)
        np.testing.assert_allclose(answer[probabilities].sum(axis=1), 1.0, atol=1e-6)
    else:
        assert list(answer.columns) == ["prediction"]
        np.testing.assert_allclose(answer["prediction"], expected["prediction"], rtol=1e-6)


# --- tests ------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_logged_requirements_are_pinned_and_install_cpu_builds(case, registered):
    lines = registered[case.id].requirements.read_text().split()
    assert lines and all("==" in line for line in lines), lines
    names = {line.split("==")[0].lower() for line in lines}
    assert "driftloop" not in names
    assert {"mlflow", "scikit-learn", "numpy", "pandas", "cloudpickle"} <= names
    assert not ({"xgboost", "xgboost-cpu"} <= names)  # never both builds of one module
    if "xgboost" in case.id:
        assert names & {"xgboost", "xgboost-cpu"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_pyfunc_load_model_in_a_clean_venv(case, registered, clean_venv, store, tmp_path):
    model = registered[case.id]
    script = textwrap.dedent(
        f"""
        import importlib.util, json, os, sys
        import mlflow.pyfunc
        import pandas as pd
        absent_before = [m for m in {ABSENT!r} if importlib.util.find_spec(m) is None]
        model = mlflow.pyfunc.load_model({model.uri!r})
        split = {case.inputs.to_dict(orient="split")!r}
        frame = pd.DataFrame(split["data"], columns=split["columns"])
        out = model.predict(frame)
        import driftloop
        print(json.dumps({{
            "absent_before": absent_before,
            "driftloop": os.path.realpath(driftloop.__file__),
            "heavy_imported": [m for m in {ABSENT[1:]!r} if m in sys.modules],
            "answer": out.to_dict(orient="split"),
        }}))
        """
    )
    result = run_in(clean_venv, store[1], script, tmp_path)
    assert result["absent_before"] == list(ABSENT)  # driftloop came with the model
    assert f"{os.sep}code{os.sep}driftloop{os.sep}" in result["driftloop"]
    assert result["heavy_imported"] == []
    answer = result["answer"]
    check_answer(case, model, pd.DataFrame(answer["data"], columns=answer["columns"]))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_mlflow_models_serve_in_a_clean_venv(case, registered, clean_venv, store, tmp_path):
    model = registered[case.id]
    port = free_port()
    log_path = tmp_path / "serve.log"
    command = [
        str(clean_venv / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        model.uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command,
            env=clean_env(store[1], clean_venv),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers go down with it
        )
    try:
        started = time.perf_counter()
        deadline = started + SERVE_READY_TIMEOUT_S
        while True:
            assert server.poll() is None, f"server exited:\n{log_path.read_text()[-4000:]}"
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.perf_counter() < deadline, (
                f"not ready after {SERVE_READY_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}"
            )
            time.sleep(0.5)
        print(f"\n{case.id}: mlflow models serve ready in {time.perf_counter() - started:.1f}s")
        split = case.inputs.to_dict(orient="split")
        response = httpx.post(
            f"{base}/invocations",
            json={"dataframe_split": {"columns": split["columns"], "data": split["data"]}},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        check_answer(case, model, pd.DataFrame(predictions))
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
