"""Shared helpers for the registry, gate and CLI tests (no tests of its own).

Real things only: tiny sklearn text Pipelines (TF-IDF + logistic regression,
string classes, predict_proba) logged to a real MLflow SQLite store, and a
small blueprint-shaped scorer computing macro F1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from driftloop.blueprints import Metric
from driftloop.registry import scoped_tracking_uri

# two domains with disjoint sentiment vocabulary: a model trained on one
# guesses on the other, which is what makes the re-scoring test meaningful
DOMAINS = {
    "movies": {
        "positive": ["masterpiece", "gripping", "moving", "brilliant", "charming"],
        "negative": ["boring", "clumsy", "tedious", "forgettable", "bland"],
        "filler": ["the", "film", "plot", "actors", "scene", "director"],
    },
    "tweets": {
        "positive": ["yay", "lol", "awesome", "loveit", "woohoo"],
        "negative": ["ugh", "meh", "fail", "annoyed", "smh"],
        "filler": ["today", "my", "phone", "bus", "coffee", "monday"],
    },
}


def make_frame(domain: str, n: int, seed: int, prefix: str | None = None) -> pd.DataFrame:
    vocab = DOMAINS[domain]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(vocab["filler"], 3) + [rng.choice(vocab[label])]
        rng.shuffle(words)
        rows.append(
            {"id": f"{prefix or domain}-{seed}-{i}", "text": " ".join(words), "label": label}
        )
    return pd.DataFrame(rows)


def text_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(lowercase=True)),
            ("classifier", LogisticRegression(max_iter=200)),
        ]
    )


def train(frame: pd.DataFrame) -> Pipeline:
    return text_pipeline().fit(frame["text"].tolist(), frame["label"].tolist())


@dataclass
class TextBlueprint:
    """The scoring surface of a sentiment blueprint, for tests."""

    name: str = "sentiment-test"
    primary_metric: str = "macro_f1"
    greater_is_better: bool = True
    labels: tuple[str, ...] = ("negative", "positive")
    metric: Metric = Metric("macro_f1", True, floor=0.60)
    options: dict = field(default_factory=dict)

    def score(self, model, frame: pd.DataFrame) -> dict[str, float]:
        predicted = model.predict(frame["text"].tolist())
        return {
            "macro_f1": float(f1_score(frame["label"], predicted, average="macro")),
            "accuracy": float((predicted == frame["label"].to_numpy()).mean()),
        }


def log_model_run(tracking_uri: str, model: Pipeline, experiment: str = "registry-tests") -> str:
    """A training run with the model logged as training does (mlflow.sklearn, "model")."""
    with scoped_tracking_uri(tracking_uri):
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return run.info.run_id


@dataclass
class LoggedModels:
    tracking_uri: str
    movies_test: pd.DataFrame
    tweets_test: pd.DataFrame
    movies_model: Pipeline  # trained on movies only
    both_model: Pipeline  # trained on movies + tweets
    weak_model: Pipeline  # trained on shuffled labels
    movies_run: str
    both_run: str
    weak_run: str


@pytest.fixture(scope="module")
def logged_models(tmp_path_factory) -> LoggedModels:
    """Three real models in a real SQLite registry, shared by the registry test modules.

    Tests register versions under their own unique model names, so sharing
    one store is safe; it saves creating the MLflow schema once per module.
    """
    # cached at module level: a session-scoped fixture imported into several
    # test modules would still be set up once per module
    key = id(tmp_path_factory)
    if key not in _SHARED:
        _SHARED[key] = _log_models(tmp_path_factory)
    return _SHARED[key]


_SHARED: dict[int, LoggedModels] = {}


def _log_models(tmp_path_factory) -> LoggedModels:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    movies_train = make_frame("movies", 120, seed=1)
    tweets_train = make_frame("tweets", 120, seed=2)
    shuffled = movies_train.copy()
    shuffled["label"] = shuffled["label"].sample(frac=1.0, random_state=3).to_numpy()
    models = {
        "movies": train(movies_train),
        "both": train(pd.concat([movies_train, tweets_train], ignore_index=True)),
        "weak": train(shuffled),
    }
    runs = {key: log_model_run(uri, model) for key, model in models.items()}
    return LoggedModels(
        tracking_uri=uri,
        movies_test=make_frame("movies", 60, seed=11),
        tweets_test=make_frame("tweets", 60, seed=12),
        movies_model=models["movies"],
        both_model=models["both"],
        weak_model=models["weak"],
        movies_run=runs["movies"],
        both_run=runs["both"],
        weak_run=runs["weak"],
    )


@pytest.fixture
def registry_env(home, logged_models, monkeypatch):
    """Point this process (and the CLI) at the module's registry; yields the URI."""
    from driftloop.settings import get_settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged_models.tracking_uri)
    get_settings.cache_clear()
    yield logged_models.tracking_uri
    get_settings.cache_clear()
