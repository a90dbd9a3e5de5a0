"""Winner selection: best primary metric, near-ties to the earliest-declared candidate."""

from __future__ import annotations

from driftloop.blueprints import Metric, get_blueprint
from driftloop.training.candidates import CandidateResult, pick_winner


def _results(*scores):
    return [CandidateResult(f"c{i}", {"macro_f1": s}, {}, 0.1) for i, s in enumerate(scores)]


def test_clear_winner_is_picked():
    blueprint = get_blueprint("sentiment")
    assert pick_winner(blueprint, _results(0.80, 0.92, 0.85), 0.001).name == "c1"


def test_near_tie_goes_to_the_first_declared():
    blueprint = get_blueprint("sentiment")
    assert pick_winner(blueprint, _results(0.80, 0.9391, 0.9396), 0.0026).name == "c1"
    assert pick_winner(blueprint, _results(0.80, 0.9391, 0.9396), 0.0).name == "c2"


def test_lower_is_better_blueprints_are_respected():
    class Loss(type(get_blueprint("sentiment"))):
        default_metric = Metric("macro_f1", greater_is_better=False)

    assert pick_winner(Loss(), _results(0.5, 0.2, 0.3), 0.0).name == "c1"
