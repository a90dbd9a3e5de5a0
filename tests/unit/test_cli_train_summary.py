import io

from rich.console import Console

from driftloop.cli.train import render_summary


def summary(best: str) -> dict:
    return {
        "primary_metric": "macro_f1",
        "best_candidate": best,
        "candidates": [
            {"name": "linear_svc", "metrics": {"macro_f1": 0.9454}, "fit_seconds": 0.5},
            {"name": "complement_nb", "metrics": {"macro_f1": 0.9480}, "fit_seconds": 0.4},
        ],
        "test_metrics": {"macro_f1": 0.92},
        "version": "1",
        "decision": "promote",
        "reason": "first model",
        "aliases": ["champion"],
        "run_id": "abc123",
        "run_dir": "/tmp/run",
    }


def rendered(best: str) -> str:
    out = io.StringIO()
    render_summary(Console(file=out, width=200), summary(best), "sentiment")
    return out.getvalue()


def test_a_chosen_candidate_below_the_top_score_is_explained_as_a_near_tie():
    text = rendered("linear_svc")
    assert "linear_svc chosen over complement_nb (0.9480)" in text
    assert "near-tie" in text


def test_no_explanation_when_the_top_score_is_chosen():
    assert "near-tie" not in rendered("complement_nb")
