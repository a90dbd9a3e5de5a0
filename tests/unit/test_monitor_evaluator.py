"""The evaluator's alert state machine (delivery over HTTP: tests/integration/test_evaluator.py)."""

import pytest

from driftloop.monitor.evaluator import AlertEvaluator, fingerprint, parse_metrics
from driftloop.monitor.metrics import MonitorMetrics
from driftloop.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_fingerprint_is_stable_and_order_independent():
    labels = {"alertname": "DriftDetected", "model": "sentiment", "severity": "warning"}
    assert fingerprint(labels) == fingerprint(dict(reversed(list(labels.items()))))
    assert len(fingerprint(labels)) == 16
    assert fingerprint(labels) != fingerprint(labels | {"model": "other"})
    # FNV-1a 64 of the empty label set is the offset basis, as in prometheus/common
    assert fingerprint({}) == "cbf29ce484222325"


def metrics_text(
    *,
    drift=0,
    flagged=None,
    backlog=0,
    live=0.9,
    samples=40,
    score=0.85,
    greater=True,
    accuracy=0.9,
) -> str:
    """``drift``: sustained drift (enough recent flagged windows); ``flagged``: the last
    window's flag."""
    m = MonitorMetrics()
    flagged = drift if flagged is None else flagged
    for detector, value in (("ks-projection", flagged), ("chi2-prediction", 0)):
        m.drift_detected.labels(
            model="sentiment", version="3", detector=detector, features="x"
        ).set(value)
    m.drift_flagged_windows.labels(model="sentiment", version="3").set(2 * drift or flagged)
    m.drift_sustained.labels(model="sentiment", version="3").set(drift)
    m.set_feedback(
        "sentiment",
        "3",
        total=backlog + 5,
        since_champion=backlog,
        judged=samples,
        accuracy=accuracy,
    )
    m.set_live_score("sentiment", "3", value=live, samples=samples)
    m.set_champion("sentiment", "3", test_score=score, greater_is_better=greater)
    return m.render().decode()


@pytest.fixture
def evaluator(tmp_path):
    clock = Clock()
    evaluator = AlertEvaluator(
        Settings(home=tmp_path),
        metrics_url="http://127.0.0.1:8090/metrics",
        for_duration="30s",
        clock=clock,
    )
    evaluator.fake_clock = clock
    yield evaluator
    evaluator.close()


def step(evaluator, seconds: float, **metrics) -> list[tuple[str, str]]:
    """Advance the clock, evaluate, return (alertname, status) of what changed."""
    evaluator.fake_clock.now += seconds
    changed = evaluator.evaluate(parse_metrics(metrics_text(**metrics)))
    return [(s.labels["alertname"], "resolved" if s.ends_at else "firing") for s in changed]


def test_alert_fires_after_for_duration_then_resolves(evaluator):
    assert step(evaluator, 0, drift=1) == []  # pending
    assert evaluator.payloads() == []
    assert step(evaluator, 15, drift=1) == []
    assert step(evaluator, 20, drift=1) == [("DriftDetected", "firing")]  # 35 s > 30 s
    ((_, body),) = evaluator.payloads()
    assert body["status"] == "firing" and body["version"] == "4"
    alert = body["alerts"][0]
    assert alert["labels"] == {
        "alertname": "DriftDetected",
        "model": "sentiment",
        "severity": "warning",
    }
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert step(evaluator, 15, drift=1) == []  # still firing: nothing new
    assert step(evaluator, 15, drift=0) == [("DriftDetected", "resolved")]
    ((_, body),) = evaluator.payloads()
    assert body["status"] == "resolved"
    assert body["alerts"][0]["startsAt"] == alert["startsAt"]
    assert body["alerts"][0]["endsAt"] > alert["startsAt"]


def test_condition_that_clears_while_pending_never_fires(evaluator):
    step(evaluator, 0, drift=1)
    assert step(evaluator, 10, drift=0) == []
    assert step(evaluator, 60, drift=0) == []
    assert evaluator.payloads() == [] and evaluator.states == {}


def test_one_flagged_window_held_past_for_is_no_alert(evaluator):
    """The issue's false alarm: slow traffic keeps one flagged window's gauge up for
    minutes; the rule waits for the monitor to call the drift sustained."""
    for _ in range(6):
        assert step(evaluator, 20, flagged=1) == []
    assert evaluator.payloads() == []
    step(evaluator, 0, drift=1)
    assert step(evaluator, 35, drift=1) == [("DriftDetected", "firing")]


def test_feedback_backlog_and_score_drop_use_the_shared_thresholds(evaluator):
    # macro-F1 0.85 on test, margin 10 % of it: fires below 0.765
    step(evaluator, 0, backlog=49, live=0.77, samples=40)
    assert step(evaluator, 31, backlog=49, live=0.77, samples=40) == []  # 49 < 50, 0.77 >= 0.765
    step(evaluator, 1, backlog=50, live=0.74, samples=40)
    fired = step(evaluator, 31, backlog=50, live=0.74, samples=40)
    assert sorted(fired) == [("FeedbackBacklog", "firing"), ("LiveScoreDrop", "firing")]
    bodies = {group[0]: body for group, body in evaluator.payloads()}
    drop = bodies["LiveScoreDrop"]["alerts"][0]
    assert drop["labels"] == {
        "alertname": "LiveScoreDrop",
        "model": "sentiment",
        "version": "3",
        "severity": "critical",
    }
    assert "0.74" in drop["annotations"]["description"]
    assert bodies["FeedbackBacklog"]["alerts"][0]["annotations"]["summary"].startswith(
        "50 labelled"
    )


def test_too_few_samples_or_no_live_score_holds_the_score_alert(evaluator):
    step(evaluator, 0, live=0.2, samples=29)
    assert step(evaluator, 31, live=0.2, samples=29) == []
    step(evaluator, 1, live=None, samples=100)  # NaN: too few pairs to score
    assert step(evaluator, 31, live=None, samples=100) == []


def test_a_lower_is_better_metric_fires_when_the_error_grows_not_when_it_shrinks(evaluator):
    rmse = {"score": 2.0, "greater": False}  # fires above 2.0 x 1.1 = 2.2
    step(evaluator, 0, live=1.0, **rmse)
    assert step(evaluator, 31, live=1.0, **rmse) == []  # far better than on test
    assert step(evaluator, 31, live=2.15, **rmse) == []  # worse, within the margin
    step(evaluator, 1, live=2.5, **rmse)
    assert step(evaluator, 31, live=2.5, **rmse) == [("LiveScoreDrop", "firing")]
    assert step(evaluator, 1, live=0.5, **rmse) == [("LiveScoreDrop", "resolved")]


def test_a_greater_is_better_metric_fires_when_it_falls_not_when_it_rises(evaluator):
    step(evaluator, 0, live=0.99)
    assert step(evaluator, 31, live=0.99) == []
    step(evaluator, 1, live=0.5)
    assert step(evaluator, 31, live=0.5) == [("LiveScoreDrop", "firing")]


def test_score_dropped_follows_the_direction():
    from driftloop.monitor.rules import score_dropped

    assert score_dropped(2.3, 2.0, greater_is_better=False, margin=0.1)
    assert not score_dropped(1.0, 2.0, greater_is_better=False, margin=0.1)
    assert score_dropped(0.7, 0.85, greater_is_better=True, margin=0.1)
    assert not score_dropped(0.95, 0.85, greater_is_better=True, margin=0.1)
    assert score_dropped(-0.5, -0.2, greater_is_better=True, margin=0.1)  # r2 below zero


def test_thresholds_follow_settings(tmp_path):
    clock = Clock()
    evaluator = AlertEvaluator(
        Settings(home=tmp_path, feedback_backlog_threshold=5),
        metrics_url="http://x/metrics",
        for_duration="0s",
        clock=clock,
    )
    changed = evaluator.evaluate(parse_metrics(metrics_text(backlog=5)))
    assert [s.labels["alertname"] for s in changed] == ["FeedbackBacklog"]
    evaluator.close()


def test_payload_is_what_the_trigger_accepts(evaluator):
    from driftloop.trigger.payload import WebhookPayload

    step(evaluator, 0, drift=1, backlog=80)
    step(evaluator, 31, drift=1, backlog=80)
    bodies = [body for _, body in evaluator.payloads()]
    assert len(bodies) == 2
    for body in bodies:
        payload = WebhookPayload.model_validate(body)
        assert payload.alerts[0].model == "sentiment"
        assert body["groupKey"].startswith("{}:{alertname=")
        assert set(body) >= {
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts",
        }


def hit_rates_text(warm: float, semi: float, semi_lists: int = 40) -> str:
    """A recommender's live metrics as the monitor exports them: warm over 100 lists with
    feedback, semi over ``semi_lists``; the overall hit rate falls with the warm one."""
    m = MonitorMetrics()
    metrics = {
        "hit_rate_at_10": warm,
        "hit_rate_at_10_warm": warm,
        "feedback_lists_warm": 100.0,
        "hit_rate_at_10_semi": semi,
        "feedback_lists_semi": float(semi_lists),
    }
    m.set_live_score("movies", "4", value=0.3, samples=140, metrics=metrics)
    return m.render().decode()


def hit_rate_step(evaluator, seconds: float, **rates) -> list[tuple[str, dict, str]]:
    evaluator.fake_clock.now += seconds
    changed = evaluator.evaluate(parse_metrics(hit_rates_text(**rates)))
    return [
        (s.labels["alertname"], s.labels, "resolved" if s.ends_at else "firing") for s in changed
    ]


def test_live_hit_rate_drop_per_segment_against_its_own_recent_average(evaluator):
    # semi starts at 0.9 over 10 lists: too few to count, so 0.5 later is no drop from it
    for _ in range(4):
        assert hit_rate_step(evaluator, 15, warm=0.6, semi=0.9, semi_lists=10) == []
    for _ in range(4):
        assert hit_rate_step(evaluator, 15, warm=0.6, semi=0.5) == []
    # warm falls to 0.4: below 0.9 x its 1h average (one value a minute: 0.6s, then 0.4s);
    # pending for 30 s
    assert hit_rate_step(evaluator, 15, warm=0.4, semi=0.5) == []
    assert hit_rate_step(evaluator, 15, warm=0.4, semi=0.5) == []
    ((name, labels, status),) = hit_rate_step(evaluator, 15, warm=0.4, semi=0.5)
    assert (name, status) == ("LiveHitRateDrop", "firing")
    assert labels == {
        "alertname": "LiveHitRateDrop",
        "model": "movies",
        "version": "4",
        "segment": "warm",
        "severity": "warning",
    }
    ((_, body),) = evaluator.payloads()
    # a model label, like the other monitor alerts: the trigger retrains movies on it
    from driftloop.trigger.payload import WebhookPayload

    assert WebhookPayload.model_validate(body).alerts[0].model == "movies"
    description = body["alerts"][0]["annotations"]["description"]
    assert "warm users of movies version 4 is 0.4, below (1 - 0.1) x" in description
    # a fall within the margin (semi 0.5 -> 0.46 > 0.9 x 0.5) does not fire
    assert hit_rate_step(evaluator, 15, warm=0.4, semi=0.46) == []
    assert hit_rate_step(evaluator, 60, warm=0.4, semi=0.46) == []
    # an hour later the lower level is the average: resolved (what avg_over_time[1h:] says)
    assert hit_rate_step(evaluator, 3600, warm=0.4, semi=0.46) == [
        ("LiveHitRateDrop", labels, "resolved")
    ]


def test_a_steady_hit_rate_never_fires_and_a_recovery_resolves(evaluator):
    for _ in range(10):
        assert hit_rate_step(evaluator, 15, warm=0.6, semi=0.5) == []
    hit_rate_step(evaluator, 15, warm=0.3, semi=0.5)
    assert [c[2] for c in hit_rate_step(evaluator, 31, warm=0.3, semi=0.5)] == ["firing"]
    assert [c[2] for c in hit_rate_step(evaluator, 15, warm=0.6, semi=0.5)] == ["resolved"]
