"""The gate with real models in a real MLflow SQLite registry."""

from __future__ import annotations

import json
import uuid

import pytest

from driftloop.datasets.files import read_frame
from driftloop.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, ModelRegistry
from driftloop.settings import Settings
from driftloop.training.gate import GateError, gate, promote_if
from tests.unit import test_registry_support as support

# fixtures shared with the registry and CLI tests
logged_models = support.logged_models
registry_env = support.registry_env

BLUEPRINT = support.TextBlueprint()


def unique() -> str:
    return f"gated-{uuid.uuid4().hex[:8]}"


def metric_tags(test_fingerprint: str, value: float) -> dict[str, str]:
    return {
        "driftloop.split.test_fingerprint": test_fingerprint,
        "driftloop.metric.name": "macro_f1",
        "driftloop.metric.value": repr(value),
        "driftloop.metric.split": "test",
    }


@pytest.fixture
def settings(registry_env, home):
    return Settings(home=home, promotion_floor=0.6, min_improvement=0.01)


@pytest.fixture
def registry(registry_env) -> ModelRegistry:
    return ModelRegistry(registry_env)


@pytest.fixture
def tests_dir(tmp_path, logged_models):
    """The test splits as the split step writes them: Parquet files with no suffix."""
    logged_models.movies_test.to_parquet(tmp_path / "movies-test", index=False)
    logged_models.tweets_test.to_parquet(tmp_path / "tweets-test", index=False)
    return tmp_path


def score(model, frame) -> float:
    return BLUEPRINT.score(model, frame)["macro_f1"]


def test_first_model_above_floor_is_promoted(registry, settings, logged_models, tests_dir):
    name = unique()
    value = score(logged_models.movies_model, logged_models.movies_test)
    assert value >= 0.9  # the tiny model really learned the movie vocabulary
    version = registry.register(name, logged_models.movies_run, metric_tags("fp-movies", value))

    decision = gate(name, version, BLUEPRINT, tests_dir / "movies-test", "fp-movies", settings)

    assert decision.outcome == "promote"
    assert decision.champion_score is None and decision.champion_version is None
    assert decision.challenger_score == value
    tags = registry.get_version(name, version).tags
    assert tags["driftloop.decision"] == "promote"
    assert tags["driftloop.champion_score"] == "none"
    assert tags["driftloop.rescored"] == "false"
    assert registry.aliases(name) == {}  # the gate decides; promotion is its own step
    assert promote_if(decision, name, version, settings) is True
    assert registry.aliases(name) == {CHAMPION: version}


def test_first_model_below_floor_is_kept_as_challenger(
    registry, settings, logged_models, tests_dir
):
    name = unique()
    settings = settings.model_copy(update={"promotion_floor": 0.8})
    # no stored metric: the gate scores the challenger on the test split itself
    version = registry.register(name, logged_models.weak_run, {})
    expected = score(logged_models.weak_model, logged_models.movies_test)
    assert expected < settings.promotion_floor

    decision = gate(name, version, BLUEPRINT, tests_dir / "movies-test", "fp-movies", settings)

    assert decision.outcome == "keep"
    assert decision.challenger_score == pytest.approx(expected)
    assert "misses floor" in decision.reason
    assert registry.aliases(name) == {CHALLENGER: version}
    assert promote_if(decision, name, version, settings) is False
    assert registry.get_version(name, version).tags["driftloop.decision"] == "keep"


def test_no_relative_gain_keeps_the_champion(registry, settings, logged_models, tests_dir):
    name = unique()
    value = score(logged_models.movies_model, logged_models.movies_test)
    champion = registry.register(name, logged_models.movies_run, metric_tags("fp-movies", value))
    registry.promote(name, champion)
    # same split, same score: a retrain that gained nothing
    challenger = registry.register(name, logged_models.both_run, metric_tags("fp-movies", value))

    decision = gate(name, challenger, BLUEPRINT, tests_dir / "movies-test", "fp-movies", settings)

    assert decision.outcome == "keep"
    assert decision.rescored is False
    assert decision.champion_version == champion
    assert decision.required == pytest.approx(value * 1.01)
    tags = registry.get_version(name, challenger).tags
    assert tags["driftloop.decision"] == "keep"
    assert "needs 1.00%" in tags["driftloop.decision.reason"]
    assert float(tags["driftloop.champion_score"]) == value
    assert float(tags["driftloop.challenger_score"]) == value
    assert tags["driftloop.champion_version"] == champion
    assert registry.aliases(name) == {CHAMPION: champion, CHALLENGER: challenger}


def test_same_split_uses_stored_scores_and_promotes_a_real_gain(
    registry,
    settings,
    logged_models,
    tests_dir,
):
    name = unique()
    weak = score(logged_models.weak_model, logged_models.movies_test)
    strong = score(logged_models.movies_model, logged_models.movies_test)
    champion = registry.register(name, logged_models.weak_run, metric_tags("fp-movies", weak))
    registry.promote(name, champion)
    challenger = registry.register(name, logged_models.movies_run, metric_tags("fp-movies", strong))

    decision = gate(name, challenger, BLUEPRINT, tests_dir / "movies-test", "fp-movies", settings)

    assert decision.outcome == "promote" and decision.rescored is False
    assert (decision.champion_score, decision.challenger_score) == (weak, strong)
    promote_if(decision, name, challenger, settings)
    assert registry.aliases(name) == {CHAMPION: challenger, PREVIOUS_CHAMPION: champion}


def test_different_test_split_rescores_the_champion(registry, settings, logged_models, tests_dir):
    name = unique()
    # champion: movies only, stored score measured on the movies test split
    on_movies = score(logged_models.movies_model, logged_models.movies_test)
    champion = registry.register(
        name, logged_models.movies_run, metric_tags("fp-movies", on_movies)
    )
    registry.promote(name, champion)
    # challenger: retrained with tweets, scored on the new (tweets) test split
    on_tweets = score(logged_models.both_model, logged_models.tweets_test)
    challenger = registry.register(
        name, logged_models.both_run, metric_tags("fp-tweets", on_tweets)
    )
    champion_on_tweets = score(logged_models.movies_model, logged_models.tweets_test)
    # the stored numbers alone would keep the champion; the shifted data says otherwise
    assert on_tweets < on_movies * 1.01
    assert champion_on_tweets < on_movies

    decision = gate(name, challenger, BLUEPRINT, tests_dir / "tweets-test", "fp-tweets", settings)

    assert decision.rescored is True
    assert decision.champion_score == pytest.approx(champion_on_tweets)
    assert decision.champion_score != on_movies
    tags = registry.get_version(name, challenger).tags
    assert tags["driftloop.rescored"] == "true"
    assert float(tags["driftloop.champion_score"]) == pytest.approx(champion_on_tweets)
    assert "re-scored" in tags["driftloop.decision.reason"]
    expected = "promote" if on_tweets >= champion_on_tweets * 1.01 else "keep"
    assert decision.outcome == expected == "promote"


def test_gating_the_champion_itself_changes_nothing(registry, settings, logged_models, tests_dir):
    name = unique()
    version = registry.register(name, logged_models.movies_run, metric_tags("fp-movies", 0.9))
    registry.promote(name, version)
    decision = gate(name, version, BLUEPRINT, tests_dir / "movies-test", "fp-movies", settings)
    assert decision.outcome == "keep" and "already the champion" in decision.reason
    assert decision.challenger_score == decision.champion_score == 0.9
    json.dumps(decision.to_dict(), allow_nan=False)  # the gate component's output
    assert registry.aliases(name) == {CHAMPION: version}


def test_missing_test_split_is_a_clear_error(registry, settings, logged_models, tmp_path):
    name = unique()
    version = registry.register(name, logged_models.movies_run, {})
    with pytest.raises(GateError, match="test split not found"):
        gate(name, version, BLUEPRINT, tmp_path / "nope", "fp", settings)


def test_read_frame_formats(tmp_path, logged_models):
    frame = logged_models.movies_test
    frame.to_csv(tmp_path / "split.csv", index=False)
    frame.to_csv(tmp_path / "no-suffix", index=False)
    frame.to_json(tmp_path / "split.jsonl", orient="records", lines=True)
    for path in ("split.csv", "no-suffix", "split.jsonl"):
        loaded = read_frame(tmp_path / path, dtype={"id": str})
        assert loaded["id"].tolist() == frame["id"].tolist()
        assert loaded["text"].tolist() == frame["text"].tolist()


def test_blueprint_without_the_primary_metric_is_a_clear_error(
    registry, settings, logged_models, tests_dir
):
    name = unique()
    version = registry.register(name, logged_models.movies_run, {})
    blueprint = support.TextBlueprint(primary_metric="rmse", greater_is_better=False)
    with pytest.raises(GateError, match=r"returned no 'rmse' \(got \['accuracy', 'macro_f1'\]\)"):
        gate(name, version, blueprint, tests_dir / "movies-test", "fp-movies", settings)
    assert "driftloop.decision" not in registry.get_version(name, version).tags


def test_promote_to_challenger_only_above_the_floor(registry, settings, logged_models):
    from driftloop.training.gate import admit_challenger

    name = unique()
    good = registry.register(name, logged_models.movies_run, metric_tags("fp-movies", 0.9))
    weak = registry.register(name, logged_models.weak_run, metric_tags("fp-movies", 0.55))

    admitted = admit_challenger(name, good, BLUEPRINT, settings)  # floor 0.6
    assert admitted["outcome"] == "challenger" and admitted["floor"] == 0.6
    assert registry.aliases(name) == {CHALLENGER: good}

    refused = admit_challenger(name, weak, BLUEPRINT, settings)
    assert refused["outcome"] == "below-floor"
    assert refused["reason"] == "macro_f1 0.5500 misses floor 0.6000"
    assert registry.aliases(name) == {CHALLENGER: good}  # no alias moved for the weak one

    unscored = registry.register(name, logged_models.weak_run, {})
    with pytest.raises(GateError, match="not the gate's 'macro_f1'"):
        admit_challenger(name, unscored, BLUEPRINT, settings)


class ClassifyingBlueprint(support.TextBlueprint):
    """The test blueprint with the classification contract McNemar's test needs."""

    class_column = "label"

    def features(self, frame):
        return frame["text"].tolist()

    def targets(self, frame):
        return frame["label"].to_numpy()


def _weak_champion_and_strong_challenger(registry, logged_models):
    name = unique()
    weak = score(logged_models.weak_model, logged_models.movies_test)
    strong = score(logged_models.movies_model, logged_models.movies_test)
    champion = registry.register(name, logged_models.weak_run, metric_tags("fp-movies", weak))
    registry.promote(name, champion)
    challenger = registry.register(name, logged_models.movies_run, metric_tags("fp-movies", strong))
    return name, challenger


def test_mcnemar_keeps_a_gain_that_is_not_significant(registry, settings, logged_models, tests_dir):
    name, challenger = _weak_champion_and_strong_challenger(registry, logged_models)
    blueprint = ClassifyingBlueprint()
    test = tests_dir / "movies-test"

    significant = gate(name, challenger, blueprint, test, "fp-movies", settings, "mcnemar", 0.05)
    assert significant.outcome == "promote"
    assert "McNemar p = " in significant.reason
    recorded = registry.get_version(name, challenger).tags["driftloop.decision.significance"]
    assert recorded.startswith("McNemar p = ")

    # the same gain, judged at a level no 60-row test split can reach
    strict = gate(name, challenger, blueprint, test, "fp-movies", settings, "mcnemar", 1e-30)
    assert strict.outcome == "keep" and "not significant at 1e-30" in strict.reason
    assert registry.aliases(name)[CHALLENGER] == challenger


def test_significance_test_errors_name_the_problem(registry, settings, logged_models, tests_dir):
    name, challenger = _weak_champion_and_strong_challenger(registry, logged_models)
    test = tests_dir / "movies-test"
    with pytest.raises(GateError, match="unknown test 'ttest'"):
        gate(name, challenger, ClassifyingBlueprint(), test, "fp-movies", settings, "ttest")
    with pytest.raises(GateError, match="this blueprint does not classify"):
        gate(name, challenger, BLUEPRINT, test, "fp-movies", settings, "mcnemar")
