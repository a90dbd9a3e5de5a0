"""The gate re-scores the champion only on test rows it never trained on.

Real models in a real MLflow SQLite registry. The data is built so that
training rows flatter a model: every text carries a token of its own and a
third of the labels are noise, so a model scores far better on rows it
memorised than on rows it never saw -- exactly what made a re-split unfair.
"""

from __future__ import annotations

import random
import uuid

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from driftloop.lineage import TAG_SPLIT_SCHEME
from driftloop.registry import ModelRegistry
from driftloop.settings import Settings
from driftloop.training.gate import gate
from driftloop.training.splits import split_frame
from tests.unit import test_registry_support as support

logged_models = support.logged_models
registry_env = support.registry_env

BLUEPRINT = support.TextBlueprint()
WORDS = {"positive": ["great", "lovely", "superb"], "negative": ["awful", "broken", "dull"]}


def noisy_reviews(n: int, prefix: str, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        if rng.random() < 0.35:  # a label the words do not support: only memory gets it right
            label = "negative" if label == "positive" else "positive"
        word = rng.choice(WORDS["positive" if i % 2 == 0 else "negative"])
        rows.append({"id": f"{prefix}-{i}", "text": f"{word} item {prefix}x{i}", "label": label})
    return pd.DataFrame(rows)


def memorising_model(frame: pd.DataFrame) -> Pipeline:
    model = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression(C=1e4))])
    return model.fit(frame["text"].tolist(), frame["label"].tolist())


def register(registry, name, model, splits, *, with_scheme=True) -> str:
    run_id = support.log_model_run(registry.tracking_uri, model, experiment="gate-fairness")
    test_score = BLUEPRINT.score(model, splits.test)["macro_f1"]
    tags = {
        "driftloop.split.test_fingerprint": splits.fingerprints["test"],
        "driftloop.metric.name": "macro_f1",
        "driftloop.metric.value": repr(test_score),
        "driftloop.metric.split": "test",
    }
    if with_scheme:
        tags[TAG_SPLIT_SCHEME] = str(splits.scheme)
    return registry.register(name, run_id, tags)


@pytest.fixture
def registry(registry_env) -> ModelRegistry:
    return ModelRegistry(registry_env)


@pytest.fixture
def settings(registry_env, home):
    return Settings(home=home, promotion_floor=0.5, min_improvement=0.01)


def seen_ids(splits) -> set[str]:
    return set(splits.train["id"]) | set(splits.val["id"])


def champion_and_retrain(registry, tmp_path, champion_seed, challenger_seed, **register_options):
    name = f"fair-{uuid.uuid4().hex[:8]}"
    base = noisy_reviews(600, "base", seed=1)
    champion_splits = split_frame(base, seed=champion_seed)
    champion_model = memorising_model(champion_splits.train)
    champion = register(registry, name, champion_model, champion_splits, **register_options)
    registry.promote(name, champion)
    # retraining: the same base rows plus rows that came in since (feedback)
    grown = pd.concat([base, noisy_reviews(300, "feedback", seed=2)], ignore_index=True)
    splits = split_frame(grown, seed=challenger_seed)
    challenger = register(registry, name, memorising_model(splits.train), splits)
    splits.test.to_parquet(tmp_path / "test", index=False)
    return name, challenger, champion_model, champion_splits, splits


def test_retraining_with_extra_rows_keeps_every_champion_training_row_out_of_the_test_split(
    registry, settings, tmp_path
):
    name, challenger, champion_model, champion_splits, splits = champion_and_retrain(
        registry, tmp_path, champion_seed=42, challenger_seed=42
    )
    assert seen_ids(champion_splits).isdisjoint(splits.test["id"])

    decision = gate(
        name, challenger, BLUEPRINT, tmp_path / "test", splits.fingerprints["test"], settings
    )

    tags = registry.get_version(name, challenger).tags
    assert decision.rescored is True
    assert tags["driftloop.decision.excluded_rows"] == "0"
    assert tags["driftloop.decision.test_rows"] == str(len(splits.test))
    assert decision.champion_score == pytest.approx(
        BLUEPRINT.score(champion_model, splits.test)["macro_f1"]
    )
    assert "none of which it trained on" in decision.reason


def test_a_champion_split_another_way_is_judged_only_on_rows_it_never_saw(
    registry, settings, tmp_path
):
    name, challenger, champion_model, champion_splits, splits = champion_and_retrain(
        registry, tmp_path, champion_seed=7, challenger_seed=42
    )
    trained_on = splits.test["id"].isin(seen_ids(champion_splits))
    assert trained_on.sum() > 50  # another seed: many new test rows were the champion's
    # The gate knows the champion's scheme, not its rows, so it also leaves out new rows
    # that scheme would have trained on: never unfair, at the cost of some test rows.
    grown = pd.concat([splits.train, splits.val, splits.test])
    would_train_on = splits.test["id"].isin(seen_ids(split_frame(grown, seed=7)))
    assert not (trained_on & ~would_train_on).any()
    unseen = splits.test[~would_train_on]
    fair = BLUEPRINT.score(champion_model, unseen)["macro_f1"]
    flattered = BLUEPRINT.score(champion_model, splits.test)["macro_f1"]
    assert flattered > fair + 0.1  # what the old re-scoring would have credited it with

    decision = gate(
        name, challenger, BLUEPRINT, tmp_path / "test", splits.fingerprints["test"], settings
    )

    tags = registry.get_version(name, challenger).tags
    assert tags["driftloop.decision.excluded_rows"] == str(int(would_train_on.sum()))
    assert tags["driftloop.decision.test_rows"] == str(len(unseen))
    assert decision.champion_score == pytest.approx(fair)
    # the challenger is judged on the same rows, not on its stored full-split score
    challenger_model = registry.load_sklearn(name, challenger)
    assert decision.challenger_score == pytest.approx(
        BLUEPRINT.score(challenger_model, unseen)["macro_f1"]
    )
    assert f"{int(would_train_on.sum())} rows its split would train on were left out" in (
        decision.reason
    )


def test_a_champion_without_a_recorded_split_is_rescored_with_a_warning(
    registry, settings, tmp_path
):
    name, challenger, champion_model, _, splits = champion_and_retrain(
        registry, tmp_path, champion_seed=7, challenger_seed=42, with_scheme=False
    )

    decision = gate(
        name, challenger, BLUEPRINT, tmp_path / "test", splits.fingerprints["test"], settings
    )

    assert decision.champion_score == pytest.approx(
        BLUEPRINT.score(champion_model, splits.test)["macro_f1"]
    )
    assert "recorded no split scheme" in decision.reason
    assert registry.get_version(name, challenger).tags["driftloop.decision.excluded_rows"] == "0"
