# ruff: noqa: E501  (promtool test YAML below keeps one series per line)
import shutil
import subprocess
import textwrap

import pytest
import yaml

from driftloop.monitor.rules import (
    ALERTS,
    RULES_FILE,
    default_settings,
    dump_rules,
    parse_duration,
    render_rules,
)
from driftloop.settings import Settings

PROMTOOL = shutil.which("promtool")


def test_checked_in_rules_equal_the_rendered_defaults():
    assert yaml.safe_load(RULES_FILE.read_text()) == render_rules(default_settings())
    # and the defaults really are Settings' defaults
    assert render_rules(default_settings()) == render_rules(Settings.model_construct())


def test_rules_carry_model_and_severity_and_annotations():
    rules = render_rules(default_settings())["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [
        "DriftDetected",
        "FeedbackBacklog",
        "LiveScoreDrop",
        "LiveHitRateDrop",
        "DriftloopStoreDropping",
    ]
    sources = {a.name: a.source for a in ALERTS}
    for rule in rules:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        if sources[rule["alert"]] == "monitor":
            assert "model" in rule["expr"]
        else:  # per predictor process; no model label, so the trigger never retrains on it
            assert "by (job, instance)" in rule["expr"]
        assert {"summary", "description"} <= set(rule["annotations"])


def test_thresholds_come_from_settings(tmp_path):
    settings = Settings(
        home=tmp_path,
        feedback_backlog_threshold=7,
        score_drop_margin=0.25,
        score_min_samples=11,
    )
    document = render_rules(settings, for_duration="5s", interval="1s")
    group = document["groups"][0]
    assert group["interval"] == "1s"
    exprs = {r["alert"]: r["expr"] for r in group["rules"]}
    assert exprs["FeedbackBacklog"].endswith(">= 7")
    assert "- 0.25 * abs(" in exprs["LiveScoreDrop"] and exprs["LiveScoreDrop"].endswith(">= 11")
    assert "+ 0.25 * abs(" in exprs["LiveScoreDrop"]
    assert {r["for"] for r in group["rules"]} == {"5s"}
    assert "interval" not in render_rules(settings)["groups"][0]


def test_bad_for_duration_is_refused():
    with pytest.raises(ValueError, match="duration"):
        render_rules(default_settings(), for_duration="one minute")
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25


def test_every_alert_has_an_evaluator_condition():
    from driftloop.monitor.evaluator import CONDITIONS

    # the built-in evaluator scrapes the monitor: it checks the monitor's alerts
    assert set(CONDITIONS) == {a.name for a in ALERTS if a.source == "monitor"}


@pytest.mark.integration
@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_promtool_accepts_the_checked_in_rules():
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 rules found" in result.stdout


PROMTOOL_TESTS = textwrap.dedent(
    """
    rule_files: [rules.yaml]
    evaluation_interval: 15s
    tests:
      - interval: 15s
        input_series:
          # sentiment: windows flagged from 15s, the second of the last three at 30s (sustained)
          - series: 'driftloop_drift_detected{model="sentiment",version="3",detector="ks-projection",features="projection",job="monitor"}'
            values: '0 1 1 1 1 1 1 1 0 0'
          - series: 'driftloop_drift_sustained{model="sentiment",version="3",job="monitor"}'
            values: '0 0 1 1 1 1 1 1 0 0'
          - series: 'driftloop_drift_detected{model="sentiment",version="3",detector="chi2-prediction",features="prediction",job="monitor"}'
            values: '0x10'
          # "quiet": one flagged window, and traffic so slow that the next takes minutes:
          # the flag holds for longer than "for", but one window is not sustained drift
          - series: 'driftloop_drift_detected{model="quiet",version="1",detector="ks-projection",features="projection",job="monitor"}'
            values: '0 1x9'
          - series: 'driftloop_drift_flagged_windows{model="quiet",version="1",job="monitor"}'
            values: '0 1x9'
          - series: 'driftloop_drift_sustained{model="quiet",version="1",job="monitor"}'
            values: '0x10'
          - series: 'driftloop_feedback_since_champion{model="sentiment",version="3",job="monitor"}'
            values: '10+10x9'
          - series: 'driftloop_feedback_since_champion{model="quiet",version="1",job="monitor"}'
            values: '49x10'
          # macro-F1 (greater is better): 0.9, then 0.7 < 0.85 - 0.085 from 45s
          - series: 'driftloop_live_score{model="sentiment",version="3",job="monitor"}'
            values: '0.9x3 0.7x6'
          - series: 'driftloop_champion_test_score{model="sentiment",version="3",job="monitor"}'
            values: '0.85x10'
          - series: 'driftloop_score_greater_is_better{model="sentiment",version="3",job="monitor"}'
            values: '1x10'
          - series: 'driftloop_live_score_samples{model="sentiment",version="3",job="monitor"}'
            values: '40x10'
          - series: 'driftloop_live_score{model="quiet",version="1",job="monitor"}'
            values: '0.5x10'
          - series: 'driftloop_champion_test_score{model="quiet",version="1",job="monitor"}'
            values: '0.85x10'
          - series: 'driftloop_score_greater_is_better{model="quiet",version="1",job="monitor"}'
            values: '1x10'
          - series: 'driftloop_live_score_samples{model="quiet",version="1",job="monitor"}'
            values: '29x10'
          # RMSE (lower is better), test 2.0: errors shrink to 1.0 (fine), then grow to 2.5 from 45s
          - series: 'driftloop_live_score{model="prices",version="2",job="monitor"}'
            values: '1x3 2.5x6'
          - series: 'driftloop_champion_test_score{model="prices",version="2",job="monitor"}'
            values: '2x10'
          - series: 'driftloop_score_greater_is_better{model="prices",version="2",job="monitor"}'
            values: '0x10'
          - series: 'driftloop_live_score_samples{model="prices",version="2",job="monitor"}'
            values: '40x10'
          # RMSE within the margin (2.1 <= 2.2) and far below: never fires
          - series: 'driftloop_live_score{model="steady",version="1",job="monitor"}'
            values: '2.1x3 0.2x6'
          - series: 'driftloop_champion_test_score{model="steady",version="1",job="monitor"}'
            values: '2x10'
          - series: 'driftloop_score_greater_is_better{model="steady",version="1",job="monitor"}'
            values: '0x10'
          - series: 'driftloop_live_score_samples{model="steady",version="1",job="monitor"}'
            values: '40x10'
          # predictor p1 drops 50 rows per scrape from 75s to 105s; p2's counter never moves
          - series: 'driftloop_store_dropped_total{job="predictor",instance="p1:8080"}'
            values: '0x4 50+50x2 150x20'
          - series: 'driftloop_store_dropped_total{job="predictor",instance="p2:8080"}'
            values: '7x30'
        alert_rule_test:
          # sustained from 30s: pending until the 1m "for" has passed; "quiet" never fires
          - {eval_time: 60s, alertname: DriftDetected, exp_alerts: []}
          - eval_time: 90s
            alertname: DriftDetected
            exp_alerts:
              - exp_labels: {model: sentiment, severity: warning}
                exp_annotations:
                  summary: Input drift detected for model sentiment
                  description: Drift detectors flagged several recent windows of sentiment traffic (the monitor config's alarm_flagged of the last alarm_of_last, 2 of 3 by default) as drifted from the champion's reference data. Retraining on recent data is advised.
          # cleared at 120s
          - {eval_time: 135s, alertname: DriftDetected, exp_alerts: []}
          # 10, 20, ... reaches 50 at 60s, fires after the 1m "for"; "quiet" stays at 49
          - {eval_time: 60s, alertname: FeedbackBacklog, exp_alerts: []}
          - eval_time: 120s
            alertname: FeedbackBacklog
            exp_alerts:
              - exp_labels: {model: sentiment, severity: info}
                exp_annotations:
                  summary: 90 labelled feedback rows waiting for model sentiment
                  description: The champion of sentiment has collected 90 feedback labels since it was promoted (threshold 50); enough new labels to retrain on.
          # sentiment and prices worse from 45s; "quiet" has too few samples, "steady" is fine
          - {eval_time: 90s, alertname: LiveScoreDrop, exp_alerts: []}
          - eval_time: 120s
            alertname: LiveScoreDrop
            exp_alerts:
              - exp_labels: {model: sentiment, version: "3", severity: critical}
                exp_annotations:
                  summary: Live score of model sentiment is worse than its test score
                  description: The primary metric of sentiment version 3 on live feedback is 0.7, worse than the champion's test value by more than 0.1 of it, in the metric's direction (over at least 30 predictions with a ground truth).
              - exp_labels: {model: prices, version: "2", severity: critical}
                exp_annotations:
                  summary: Live score of model prices is worse than its test score
                  description: The primary metric of prices version 2 on live feedback is 2.5, worse than the champion's test value by more than 0.1 of it, in the metric's direction (over at least 30 predictions with a ground truth).
          # drops from 75s: pending until the 1m "for" has passed, then firing while the
          # last 5 minutes hold a drop; cleared once they no longer do (105s + 5m)
          - {eval_time: 60s, alertname: DriftloopStoreDropping, exp_alerts: []}
          - {eval_time: 120s, alertname: DriftloopStoreDropping, exp_alerts: []}
          - eval_time: 150s
            alertname: DriftloopStoreDropping
            exp_alerts:
              - exp_labels: {job: predictor, instance: "p1:8080", severity: critical}
                exp_annotations:
                  summary: Predictor p1:8080 is dropping prediction rows
                  description: The predictor at p1:8080 (job predictor) dropped prediction rows in the last 5 minutes (driftloop_store_dropped_total); its store queue is full, so the prediction database has been unreachable or too slow for longer than the queue can hold. Dropped rows are lost for good (no feedback can join them, no live score counts them); check the database and driftloop_store_queue_depth.
          - {eval_time: 420s, alertname: DriftloopStoreDropping, exp_alerts: []}
      # a recommender's live hit rate per segment (LiveHitRateDrop)
      - interval: 15s
        input_series:
          # movies v4, warm: 0.6 over 100 lists, 0.4 from 120s (below 0.9 x its average)
          - series: 'driftloop_live_metric{model="movies",version="4",metric="hit_rate_at_10_warm",job="monitor"}'
            values: '0.6x7 0.4x12'
          - series: 'driftloop_live_metric{model="movies",version="4",metric="feedback_lists_warm",job="monitor"}'
            values: '100x20'
          # semi: 0.9 over 10 lists (too few to count), then 0.5 over 40: no drop
          - series: 'driftloop_live_metric{model="movies",version="4",metric="hit_rate_at_10_semi",job="monitor"}'
            values: '0.9x3 0.5x16'
          - series: 'driftloop_live_metric{model="movies",version="4",metric="feedback_lists_semi",job="monitor"}'
            values: '10x3 40x16'
          # anonymous: a fall within the margin (0.5 -> 0.47)
          - series: 'driftloop_live_metric{model="movies",version="4",metric="hit_rate_at_10_anonymous",job="monitor"}'
            values: '0.5x7 0.47x12'
          - series: 'driftloop_live_metric{model="movies",version="4",metric="feedback_lists_anonymous",job="monitor"}'
            values: '60x20'
          # the overall hit rate and the CTR fall too: not per segment, not this alert's
          - series: 'driftloop_live_metric{model="movies",version="4",metric="hit_rate_at_10",job="monitor"}'
            values: '0.6x7 0.1x12'
          - series: 'driftloop_live_metric{model="movies",version="4",metric="ctr_warm",job="monitor"}'
            values: '0.6x7 0.1x12'
        alert_rule_test:
          - {eval_time: 105s, alertname: LiveHitRateDrop, exp_alerts: []}
          - {eval_time: 165s, alertname: LiveHitRateDrop, exp_alerts: []}
          - eval_time: 180s
            alertname: LiveHitRateDrop
            exp_alerts:
              - exp_labels: {model: movies, version: "4", segment: warm, severity: warning}
                exp_annotations:
                  summary: Live hit rate of warm users of model movies dropped
                  description: "The share of served lists with a clicked item (hit rate@k) for warm users of movies version 4 is 0.4, below (1 - 0.1) x its average over the last 1h (each value over at least 30 lists with feedback): what these users are shown no longer matches what they pick."
    """
)


@pytest.mark.integration
@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_promtool_unit_tests_fire_and_hold_each_alert(tmp_path):
    (tmp_path / "rules.yaml").write_text(dump_rules(render_rules(default_settings())))
    (tmp_path / "tests.yaml").write_text(PROMTOOL_TESTS)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.integration
@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_promtool_unit_tests_catch_a_wrong_threshold(tmp_path):
    """The promtool tests can fail: a backlog threshold of 100 breaks them."""
    settings = default_settings().model_copy(update={"feedback_backlog_threshold": 100})
    (tmp_path / "rules.yaml").write_text(dump_rules(render_rules(settings)))
    (tmp_path / "tests.yaml").write_text(PROMTOOL_TESTS)
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "FeedbackBacklog" in result.stdout + result.stderr
