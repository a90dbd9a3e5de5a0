"""Presets and search settings: what each preset searches, and bad values in one line."""

from __future__ import annotations

import json

import pytest

from driftloop.blueprints import get_blueprint
from driftloop.training.presets import PRESETS, SearchSettings
from tests.unit.search_fixtures import SmallTable


@pytest.fixture(scope="module")
def sentiment():  # importing the sentiment stack takes seconds: the tests using it are slow
    blueprint = get_blueprint("sentiment")
    return blueprint, blueprint.candidates(0)


@pytest.mark.slow
def test_fast_takes_light_candidates_on_a_holdout(sentiment):
    blueprint, pool = sentiment
    plan = SearchSettings(preset="fast").plan(blueprint, pool)
    assert plan.candidates == ["logreg", "linear_svc", "complement_nb"]  # no xgboost
    assert (plan.trials, plan.validation, plan.ensembles) == (15, "holdout", False)
    assert sum(plan.trials_per_candidate().values()) == 15


@pytest.mark.slow
def test_medium_adds_boosting_and_five_fold_cv(sentiment):
    blueprint, pool = sentiment
    plan = SearchSettings(preset="medium").plan(blueprint, pool)
    assert "xgboost" in plan.candidates
    assert (plan.trials, plan.validation, plan.folds) == (40, "kfold", 5)
    shares = plan.trials_per_candidate()
    assert sum(shares.values()) == 40 and max(shares.values()) - min(shares.values()) <= 1


@pytest.mark.slow
def test_best_is_time_budgeted_with_ensembles_and_a_budget_bounds_any_preset(sentiment):
    blueprint, pool = sentiment
    best = SearchSettings(preset="best").plan(blueprint, pool)
    assert best.ensembles and best.time_budget_s == PRESETS["best"].time_budget_s
    assert best.validation == "auto"
    bounded = SearchSettings(preset="fast", time_budget_s=30).plan(blueprint, pool)
    assert bounded.time_budget_s == 30


@pytest.mark.slow
def test_given_values_win_over_the_preset(sentiment):
    blueprint, pool = sentiment
    plan = SearchSettings(
        preset="fast", trials=4, candidates=("xgboost",), validation="kfold", sampler="grid"
    ).plan(blueprint, pool)
    assert (plan.candidates, plan.trials, plan.validation, plan.sampler) == (
        ["xgboost"],
        4,
        "kfold",
        "grid",
    )


def test_tiers_come_from_the_blueprint_contract():
    blueprint = SmallTable()
    pool = blueprint.candidates(0)
    assert SearchSettings(preset="fast").plan(blueprint, pool).candidates == ["sgd"]
    assert SearchSettings(preset="medium").plan(blueprint, pool).candidates == ["sgd", "forest"]


def test_json_round_trip_and_empty_means_blueprint_default():
    settings = SearchSettings(preset="medium", sampler="random", candidates=("a", "b"))
    again = SearchSettings.parse(settings.to_json())
    assert again == settings
    assert SearchSettings.parse("") is None
    assert SearchSettings.parse({"candidates": "a, b"}).candidates == ("a", "b")


@pytest.mark.parametrize(
    ("given", "option"),
    [
        ({"preset": "huge"}, "--preset"),
        ({"sampler": "cmaes"}, "--sampler"),
        ({"pruner": "median"}, "--pruner"),
        ({"validation": "loo"}, "--validation"),
        ({"trials": -1}, "--trials"),
        ({"time_budget_s": 0}, "--time-budget"),
    ],
)
def test_bad_values_name_the_option(given, option):
    with pytest.raises(ValueError, match=f"^{option}: "):
        SearchSettings(**given)


@pytest.mark.slow
def test_unknown_candidates_list_the_known_ones(sentiment):
    blueprint, pool = sentiment
    with pytest.raises(ValueError, match="^--candidates: .*forest.*known: logreg, linear_svc"):
        SearchSettings(candidates=("forest",)).plan(blueprint, pool)


def test_unknown_search_keys_and_bad_json_are_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        SearchSettings.parse(json.dumps({"trails": 3}))
    with pytest.raises(ValueError, match="not valid JSON"):
        SearchSettings.parse("{trials: 3")


def test_cli_search_options_fail_in_one_line(capsys):
    from driftloop.cli import main

    for argv, option in (
        (["--sampler", "bogus"], "--sampler"),
        (["--trials", "many"], "--trials"),
        (["--time-budget", "-5"], "--time-budget"),
        (["--candidates", "forest"], "--candidates"),
        (["--validation", "timeseries"], "--validation"),
        (["--warm-start", "nobody"], "--warm-start"),
    ):
        assert main(["train", "tabular", "--target", "species", *argv]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"driftloop: error: {option}"), lines


def test_cli_search_parameter_is_one_json_value():
    from driftloop.cli.train import search_parameter

    blueprint = SmallTable()
    none = dict.fromkeys(
        (
            "preset",
            "sampler",
            "pruner",
            "trials",
            "time_budget",
            "candidates",
            "validation",
            "warm_start",
        )
    )
    assert search_parameter(blueprint, **none) == ""
    text = search_parameter(blueprint, **(none | {"preset": "fast", "trials": "6"}))
    assert json.loads(text) == {
        "folds": 5,
        "preset": "fast",
        "pruner": "hyperband",
        "sampler": "tpe",
        "trials": 6,
    }
