"""The promotion policy: floor for a first model, relative margin for a challenger."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from driftloop.promotion import KEEP, PROMOTE, Decision, decide, should_roll_back


@pytest.mark.parametrize(
    ("challenger", "floor", "outcome"),
    [(0.61, 0.60, PROMOTE), (0.60, 0.60, PROMOTE), (0.59, 0.60, KEEP)],
)
def test_first_model_needs_the_floor(challenger, floor, outcome):
    decision = decide(challenger, None, floor=floor, min_improvement=0.01)
    assert decision.outcome == outcome
    assert decision.champion_score is None
    assert decision.required == floor
    assert "first model" in decision.reason


@pytest.mark.parametrize(
    ("challenger", "champion", "outcome"),
    [
        (0.808, 0.80, PROMOTE),  # exactly +1 %
        (0.8079, 0.80, KEEP),  # just under +1 %
        (0.80, 0.80, KEEP),
        (0.70, 0.80, KEEP),
        (0.95, 0.80, PROMOTE),
        (0.50, 0.80, KEEP),
    ],
)
def test_challenger_needs_relative_gain(challenger, champion, outcome):
    decision = decide(challenger, champion, floor=0.6, min_improvement=0.01)
    assert decision.outcome == outcome
    assert decision.required == pytest.approx(champion * 1.01)
    assert decision.promote is (outcome == PROMOTE)


def test_floor_does_not_block_a_better_challenger_once_a_champion_exists():
    # the champion, re-scored on shifted data, is below the floor; the better model wins
    decision = decide(0.58, 0.40, floor=0.6, min_improvement=0.01)
    assert decision.outcome == PROMOTE


def test_zero_margin_still_needs_strict_gain():
    assert decide(0.8, 0.8, floor=0.6, min_improvement=0.0).outcome == KEEP
    assert decide(0.8001, 0.8, floor=0.6, min_improvement=0.0).outcome == PROMOTE
    assert decide(0.1, 0.0, floor=0.0, min_improvement=0.5).outcome == PROMOTE


def test_lower_is_better_metrics():
    assert decide(0.9, None, floor=1.0, min_improvement=0.01, greater_is_better=False).promote
    assert not decide(1.1, None, floor=1.0, min_improvement=0.01, greater_is_better=False).promote
    kept = decide(0.995, 1.0, floor=2.0, min_improvement=0.01, greater_is_better=False)
    assert kept.outcome == KEEP and kept.required == pytest.approx(0.99)
    assert decide(0.99, 1.0, floor=2.0, min_improvement=0.01, greater_is_better=False).promote


def test_an_error_metric_without_a_floor():
    """RMSE: any finite first model is promoted; a challenger with a higher error is kept."""
    first = decide(65.4, None, floor=None, min_improvement=0.01, greater_is_better=False)
    assert first.promote and "no floor" in first.reason
    worse = decide(70.0, 65.4, floor=None, min_improvement=0.01, greater_is_better=False)
    assert worse.outcome == KEEP and "-7.03%" in worse.reason
    assert decide(60.0, 65.4, floor=None, min_improvement=0.01, greater_is_better=False).promote


def test_gate_floor_comes_from_the_run_then_the_deployment_then_the_blueprint(tmp_path):
    from driftloop.blueprints import get_blueprint
    from driftloop.settings import Settings
    from driftloop.training.gate import gate_floor

    regression = get_blueprint(
        '{"name": "tabular", "options": {"target": "y", "task": "regression"}}'
    )
    sentiment = get_blueprint("sentiment")
    deployment = Settings(home=tmp_path, promotion_floor=0.7)
    assert gate_floor(regression, Settings(home=tmp_path)) is None
    assert gate_floor(sentiment, Settings(home=tmp_path)) == 0.6
    assert gate_floor(sentiment, deployment) == 0.7
    run_option = get_blueprint('{"name": "sentiment", "options": {"floor": 0.8}}')
    assert gate_floor(run_option, deployment) == 0.8


def test_reason_states_the_numbers():
    decision = decide(0.81, 0.80, floor=0.6, min_improvement=0.02)
    assert decision.outcome == KEEP
    assert (
        "0.8100" in decision.reason and "0.8000" in decision.reason and "2.00%" in decision.reason
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_scores_are_rejected(bad):
    with pytest.raises(ValueError, match="challenger_score"):
        decide(bad, 0.8, floor=0.6, min_improvement=0.01)
    with pytest.raises(ValueError, match="champion_score"):
        decide(0.8, bad, floor=0.6, min_improvement=0.01)


def test_min_improvement_must_be_a_fraction():
    with pytest.raises(ValueError, match="min_improvement"):
        decide(0.8, 0.7, floor=0.6, min_improvement=1.5)


def test_decision_round_trips_through_dict():
    decision = decide(0.9, 0.8, floor=0.6, min_improvement=0.01)
    assert Decision.from_dict(decision.to_dict()) == decision


def test_roll_back_only_for_accuracy_drop_inside_window():
    promoted = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    soon = promoted + timedelta(hours=1)
    late = promoted + timedelta(hours=25)
    assert should_roll_back("LiveScoreDrop", promoted, soon, timedelta(hours=24))
    assert should_roll_back("LiveScoreDrop", promoted, soon, 3600.0)
    assert not should_roll_back("LiveScoreDrop", promoted, late, timedelta(hours=24))
    assert not should_roll_back("DriftDetected", promoted, soon, timedelta(hours=24))
    assert not should_roll_back("LiveScoreDrop", None, soon, timedelta(hours=24))
    # a promotion stamped in the future (clock skew) is not "recent"
    assert not should_roll_back("LiveScoreDrop", soon, promoted, timedelta(hours=24))


def test_roll_back_refuses_mixed_naive_and_aware_times():
    with pytest.raises(ValueError, match="timezone"):
        should_roll_back("LiveScoreDrop", datetime(2026, 1, 1), datetime.now(UTC), 60)


def test_mcnemar_counts_only_the_rows_the_models_disagree_on():
    from driftloop.promotion import mcnemar

    # 10 rows only the challenger gets right, 2 only the champion, 5 both, 3 neither
    challenger = [1] * 10 + [0] * 2 + [1] * 5 + [0] * 3
    champion = [0] * 10 + [1] * 2 + [1] * 5 + [0] * 3
    test = mcnemar(challenger, champion)
    assert (test.challenger_only, test.champion_only) == (10, 2)
    assert test.p_value == pytest.approx(0.03857, abs=1e-4)  # exact binomial, two-sided
    assert mcnemar([1, 0], [1, 0]).p_value == 1.0  # no disagreement: nothing to tell apart
    with pytest.raises(ValueError, match="same rows"):
        mcnemar([1, 0], [1])


def test_require_significance_only_ever_turns_a_promotion_into_a_keep():
    from driftloop.promotion import PairedTest, require_significance

    promote = decide(0.90, 0.80, floor=None, min_improvement=0.01)
    keep = decide(0.80, 0.90, floor=None, min_improvement=0.01)
    strong, weak = PairedTest(20, 3, 0.0003), PairedTest(6, 3, 0.51)
    assert require_significance(promote, strong, 0.05).outcome == "promote"
    assert require_significance(promote, weak, 0.05).outcome == "keep"
    assert "not significant at 0.05" in require_significance(promote, weak, 0.05).reason
    assert require_significance(keep, strong, 0.05) == keep
    # a significant difference in the champion's favour is no reason to promote
    assert require_significance(promote, PairedTest(3, 20, 0.0003), 0.05).outcome == "keep"
    with pytest.raises(ValueError, match="alpha"):
        require_significance(promote, strong, 1.5)
