"""Every Prometheus series the monitor exports, in one registry of its own.

Names are the cross-team contract (``driftloop_*``, labelled ``model`` and,
where it applies, ``version``); the alert rules in ``alert_rules.yaml`` and
the built-in evaluator read exactly these.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

EVENT_TYPES = ("request", "response", "paired", "unmatched", "invalid")


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        detector_labels = ["model", "version", "detector", "features"]
        self.drift_score = Gauge(
            "driftloop_drift_score",
            "Detector distance/statistic on the last window",
            detector_labels,
            registry=r,
        )
        self.drift_p_value = Gauge(
            "driftloop_drift_p_value",
            "Detector p-value on the last window (min over features)",
            detector_labels,
            registry=r,
        )
        self.drift_detected = Gauge(
            "driftloop_drift_detected",
            "1 if the detector flagged the last window as drifted",
            detector_labels,
            registry=r,
        )
        self.drift_flagged_windows = Gauge(
            "driftloop_drift_flagged_windows",
            "How many of the last alarm_of_last windows at least one detector flagged",
            ["model", "version"],
            registry=r,
        )
        self.drift_sustained = Gauge(
            "driftloop_drift_sustained",
            "1 if alarm_flagged of the last alarm_of_last windows were flagged "
            "(the condition DriftDetected fires on)",
            ["model", "version"],
            registry=r,
        )
        self.events = Counter(
            "driftloop_events",
            "Payload-logger events by type",
            ["model", "version", "type"],
            registry=r,
        )
        self._event_counters: dict[tuple[str, str, str], Counter] = {}
        self.feedback_total = Gauge(
            "driftloop_feedback_total",
            "Feedback rows in the store for the model (all versions)",
            ["model"],
            registry=r,
        )
        self.feedback_since_champion = Gauge(
            "driftloop_feedback_since_champion",
            "Feedback on the champion since it was promoted",
            ["model", "version"],
            registry=r,
        )
        self.live_accuracy = Gauge(
            "driftloop_live_accuracy_ratio",
            "Share of the champion's judged predictions that were right",
            ["model", "version"],
            registry=r,
        )
        self.live_accuracy_samples = Gauge(
            "driftloop_live_accuracy_samples",
            "Feedback rows with a verdict (right or wrong) behind driftloop_live_accuracy_ratio",
            ["model", "version"],
            registry=r,
        )
        self.live_score = Gauge(
            "driftloop_live_score",
            "The champion's primary metric over its recent predictions with a ground truth "
            "(NaN below the minimum of pairs)",
            ["model", "version"],
            registry=r,
        )
        self.live_score_samples = Gauge(
            "driftloop_live_score_samples",
            "Prediction/ground-truth pairs behind driftloop_live_score",
            ["model", "version"],
            registry=r,
        )
        self.live_metric = Gauge(
            "driftloop_live_metric",
            "Further live metrics of the champion over the same pairs as driftloop_live_score "
            "(what its blueprint's feedback exports: a forecaster's mae and mase)",
            ["model", "version", "metric"],
            registry=r,
        )
        self.residual_drift = Gauge(
            "driftloop_residual_drift",
            "1 if the champion's latest window of residuals is larger than its first ones "
            "(one-sided Mann-Whitney U below the family p_val; monitor.residuals)",
            ["model", "version"],
            registry=r,
        )
        self.residual_p_value = Gauge(
            "driftloop_residual_p_value",
            "p-value of the latest residual window against the champion's first residuals",
            ["model", "version"],
            registry=r,
        )
        self.residual_windows = Gauge(
            "driftloop_residual_windows",
            "Residual windows tested for the champion so far",
            ["model", "version"],
            registry=r,
        )
        self.champion_test_score = Gauge(
            "driftloop_champion_test_score",
            "The champion's primary metric on its test split",
            ["model", "version"],
            registry=r,
        )
        self.score_greater_is_better = Gauge(
            "driftloop_score_greater_is_better",
            "1 if a higher value of the champion's primary metric is better, 0 if lower is",
            ["model", "version"],
            registry=r,
        )
        self.window_size = Gauge(
            "driftloop_monitor_window_size",
            "Events per drift evaluation window",
            ["model"],
            registry=r,
        )
        self.reference_loaded = Gauge(
            "driftloop_monitor_reference_loaded",
            "1 if a drift reference is loaded for the version",
            ["model", "version"],
            registry=r,
        )
        self.windows = Counter(
            "driftloop_monitor_windows",
            "Windows evaluated by the detectors",
            ["model", "version"],
            registry=r,
        )
        self.windows_dropped = Counter(
            "driftloop_monitor_windows_dropped",
            "Windows skipped because detection fell behind",
            ["model"],
            registry=r,
        )
        self.pending = Gauge(
            "driftloop_monitor_pending_events",
            "Request/response halves waiting for their pair",
            ["model"],
            registry=r,
        )
        self.detection_seconds = Histogram(
            "driftloop_monitor_detection_seconds",
            "Time to featurise and test one window",
            ["model"],
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def event(self, model: str, version: str | None, kind: str, count: int = 1) -> None:
        if count:
            key = (model, version or "", kind)
            child = self._event_counters.get(key)
            if child is None:  # labels() costs a few microseconds: once per series, not event
                child = self._event_counters[key] = self.events.labels(*key)
            child.inc(count)

    def set_feedback(
        self,
        model: str,
        version: str,
        *,
        total: int,
        since_champion: int,
        judged: int,
        accuracy: float | None,
    ) -> None:
        """``judged`` feedback is what ``accuracy`` rests on; the rest is only backlog."""
        self.feedback_total.labels(model=model).set(total)
        self.feedback_since_champion.labels(model=model, version=version).set(since_champion)
        # no judged feedback yet: NaN compares false, so no accuracy alert can fire on it
        self.live_accuracy.labels(model=model, version=version).set(
            math.nan if accuracy is None else accuracy
        )
        self.live_accuracy_samples.labels(model=model, version=version).set(judged)

    def set_live_score(
        self,
        model: str,
        version: str,
        *,
        value: float | None,
        samples: int,
        metrics: dict[str, float] | None = None,
    ) -> None:
        # NaN compares false, so LiveScoreDrop cannot fire on too few pairs
        self.live_score.labels(model=model, version=version).set(
            math.nan if value is None else value
        )
        self.live_score_samples.labels(model=model, version=version).set(samples)
        for labels in _label_sets(self.live_metric):  # a metric no longer computed: gone
            if labels[:2] == (model, version) and labels[2] not in (metrics or {}):
                self.live_metric.remove(*labels)
        for name, metric in (metrics or {}).items():
            self.live_metric.labels(model=model, version=version, metric=name).set(metric)

    def set_residual_test(
        self, model: str, version: str, *, detected: bool, p_value: float, windows: int
    ) -> None:
        self.residual_drift.labels(model=model, version=version).set(1 if detected else 0)
        self.residual_p_value.labels(model=model, version=version).set(p_value)
        self.residual_windows.labels(model=model, version=version).set(windows)

    def set_champion(
        self, model: str, version: str, *, test_score: float | None, greater_is_better: bool | None
    ) -> None:
        """The champion's test value and its metric's direction (what LiveScoreDrop compares)."""
        if test_score is not None:
            self.champion_test_score.labels(model=model, version=version).set(test_score)
        if greater_is_better is not None:
            self.score_greater_is_better.labels(model=model, version=version).set(
                1 if greater_is_better else 0
            )

    def forget_version(self, model: str, version: str) -> None:
        """Drop a replaced champion's per-version series so alerts follow the new one."""
        for gauge in (
            self.feedback_since_champion,
            self.live_accuracy,
            self.live_accuracy_samples,
            self.live_score,
            self.live_score_samples,
            self.residual_drift,
            self.residual_p_value,
            self.residual_windows,
            self.champion_test_score,
            self.score_greater_is_better,
            self.reference_loaded,
            self.drift_flagged_windows,
            self.drift_sustained,
        ):
            _remove(gauge, model, version)
        for gauge in (self.drift_score, self.drift_p_value, self.drift_detected, self.live_metric):
            for labels in list(_label_sets(gauge)):
                if labels[0] == model and labels[1] == version:
                    gauge.remove(*labels)


def _label_sets(metric):
    # prometheus_client keeps children by label tuple; there is no public listing
    return list(metric._metrics.keys())  # noqa: SLF001


def _remove(metric, *labels) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
