"""Built-in alert evaluator: the monitor's alert rules without Prometheus.

When the Prometheus and Alertmanager binaries are not installed, the
embedded stack runs this instead. It scrapes the monitor's ``/metrics``,
evaluates the same conditions as ``alert_rules.yaml`` with the same
:class:`~driftloop.monitor.rules.AlertThresholds`, honours the rules' ``for``
duration, and POSTs Alertmanager webhook payloads (version 4) to the trigger:
firing when an alert starts, again every ``repeat_interval_s`` while it
fires, and resolved when it clears. Fingerprints are computed the way
Alertmanager computes them (FNV-1a over the sorted label set), so the same
alert has the same fingerprint from either source.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop.monitor.rules import (
    ALERTS,
    HIT_RATE_BASELINE,
    HIT_RATE_METRIC,
    HIT_RATE_STEP,
    LISTS_METRIC,
    AlertThresholds,
    parse_duration,
    score_dropped,
)
from driftloop.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8095/alerts"
RECEIVER = "driftloop-trigger"
ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt of a firing alert

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's ``LabelSet.Fingerprint()``: FNV-1a 64 over sorted name/value pairs."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                digest = ((digest ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
            digest = ((digest ^ _SEPARATOR) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the conditions, one per alert rule ------------------------------------------
Series = dict[str, list[tuple[dict[str, str], float]]]


def _max_by(series: Series, name: str, keys: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    grouped: dict[tuple[str, ...], float] = {}
    for labels, value in series.get(name, []):
        if value != value:  # NaN never satisfies a comparison
            continue
        key = tuple(labels.get(k, "") for k in keys)
        grouped[key] = max(value, grouped.get(key, float("-inf")))
    return grouped


@dataclass
class Baselines:
    """Recent values of the series an alert compares with their own average (what a rule's
    ``avg_over_time(...[window:step])`` subquery reads from Prometheus' storage), kept by the
    evaluator from one evaluation to the next. ``now``: the time of the evaluation under way."""

    now: float = 0.0
    points: dict[tuple, deque] = field(default_factory=lambda: defaultdict(deque))

    def average(self, key: tuple, value: float, window_s: float, step_s: float) -> float:
        """The mean of ``key``'s values over (now - window_s, now], one per ``step_s`` slot
        (aligned to multiples of it, as subquery steps are): the first seen in each."""
        points = self.points[key]
        slot = math.floor(self.now / step_s) * step_s
        if not points or points[-1][0] < slot:
            points.append((slot, value))
        while points and points[0][0] <= self.now - window_s:
            points.popleft()
        return sum(v for _, v in points) / len(points) if points else value

    def forget_older_than(self, window_s: float) -> None:
        for key, points in list(self.points.items()):
            if not points or points[-1][0] <= self.now - window_s:
                del self.points[key]


def _drift_detected(series: Series, t: AlertThresholds, baselines=None) -> list[tuple[dict, float]]:
    return [
        ({"model": m}, v)
        for (m,), v in _max_by(series, "driftloop_drift_sustained", ("model",)).items()
        if v == 1
    ]


def _feedback_backlog(
    series: Series, t: AlertThresholds, baselines=None
) -> list[tuple[dict, float]]:
    grouped = _max_by(series, "driftloop_feedback_since_champion", ("model",))
    return [({"model": m}, v) for (m,), v in grouped.items() if v >= t.feedback_backlog]


def _live_score_drop(
    series: Series, t: AlertThresholds, baselines=None
) -> list[tuple[dict, float]]:
    keys = ("model", "version")
    live = _max_by(series, "driftloop_live_score", keys)
    test = _max_by(series, "driftloop_champion_test_score", keys)
    greater = _max_by(series, "driftloop_score_greater_is_better", keys)
    samples = _max_by(series, "driftloop_live_score_samples", keys)
    firing = []
    for key, value in live.items():
        if key not in test or key not in samples or greater.get(key) not in (0.0, 1.0):
            continue
        if samples[key] >= t.score_min_samples and score_dropped(
            value, test[key], greater[key] == 1.0, t.score_drop_margin
        ):
            firing.append(({"model": key[0], "version": key[1]}, value))
    return firing


def _per_segment(series: Series, pattern: str) -> dict[tuple[str, str, str], float]:
    """``driftloop_live_metric`` values whose metric name matches ``pattern`` (its group:
    the segment), the largest per model, version and segment (``rules._per_segment``)."""
    regex = re.compile(pattern)
    grouped: dict[tuple[str, str, str], float] = {}
    for labels, value in series.get("driftloop_live_metric", []):
        match = regex.fullmatch(labels.get("metric", ""))
        if match is None or value != value:
            continue
        key = (labels.get("model", ""), labels.get("version", ""), match.group(1))
        grouped[key] = max(value, grouped.get(key, float("-inf")))
    return grouped


def _live_hit_rate_drop(
    series: Series, t: AlertThresholds, baselines: Baselines | None = None
) -> list[tuple[dict, float]]:
    """A segment's live hit rate below (1 - margin) x its average over HIT_RATE_BASELINE
    (one value per HIT_RATE_STEP), values over fewer than score_min_samples lists left out
    (kept in ``baselines``)."""
    baselines = baselines if baselines is not None else Baselines()
    window, step = parse_duration(HIT_RATE_BASELINE), parse_duration(HIT_RATE_STEP)
    lists = _per_segment(series, LISTS_METRIC)
    firing = []
    for key, value in sorted(_per_segment(series, HIT_RATE_METRIC).items()):
        if lists.get(key, float("-inf")) < t.score_min_samples:
            continue
        average = baselines.average(("LiveHitRateDrop", *key), value, window, step)
        if value < (1 - t.score_drop_margin) * average:
            firing.append(({"model": key[0], "version": key[1], "segment": key[2]}, value))
    baselines.forget_older_than(window)
    return firing


Condition = Callable[..., list[tuple[dict, float]]]
# name -> condition(series, thresholds, baselines): the labels and value of each alert
CONDITIONS: dict[str, Condition] = {
    "DriftDetected": _drift_detected,
    "FeedbackBacklog": _feedback_backlog,
    "LiveScoreDrop": _live_score_drop,
    "LiveHitRateDrop": _live_hit_rate_drop,
}


def parse_metrics(text: str) -> Series:
    series: Series = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[sample.name].append((dict(sample.labels), float(sample.value)))
    return series


# --- state ----------------------------------------------------------------------
@dataclass
class AlertState:
    labels: dict[str, str]
    annotations: dict[str, str]
    active_since: float
    value: float
    starts_at: datetime | None = None  # set when it fires
    ends_at: datetime | None = None  # set when it resolves
    last_sent: float | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def to_payload(self, generator_url: str) -> dict:
        return {
            "status": "resolved" if self.ends_at else "firing",
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at) if self.starts_at else ZERO_TIME,
            "endsAt": rfc3339(self.ends_at) if self.ends_at else ZERO_TIME,
            "generatorURL": generator_url,
            "fingerprint": self.fingerprint,
        }


@dataclass
class AlertEvaluator:
    settings: Settings
    metrics_url: str
    webhook_url: str | None = None
    for_duration: str = "1m"  # the rules' ``for``: same string, same meaning
    repeat_interval_s: float = 3600.0
    clock: Callable[[], float] = time.time
    client: httpx.Client | None = None
    states: dict[str, AlertState] = field(default_factory=dict)
    _unsent: set[tuple[str, str]] = field(
        default_factory=set
    )  # groups whose change is not delivered
    baselines: Baselines = field(default_factory=Baselines)

    def __post_init__(self) -> None:
        self.thresholds = AlertThresholds.from_settings(self.settings)
        self.for_s = parse_duration(self.for_duration)
        self.webhook_url = (
            self.webhook_url or self.settings.evaluator_webhook_url or DEFAULT_WEBHOOK_URL
        )
        self._specs = {alert.name: alert for alert in ALERTS}
        self._own_client = self.client is None
        self.client = self.client or httpx.Client(timeout=10.0)

    # --- evaluation ------------------------------------------------------------
    def evaluate(self, series: Series) -> list[AlertState]:
        """Advance the alert states by one evaluation; returns alerts that changed."""
        now = self.clock()
        self.baselines.now = now
        seen: set[str] = set()
        changed: list[AlertState] = []
        for name, condition in CONDITIONS.items():
            spec = self._specs[name]
            for extra, value in condition(series, self.thresholds, self.baselines):
                labels = {"alertname": name, **extra, "severity": spec.severity}
                key = fingerprint(labels)
                seen.add(key)
                state = self.states.get(key)
                if state is None or state.ends_at is not None:
                    state = self.states[key] = AlertState(
                        labels=labels,
                        annotations=self._annotations(spec, labels, value),
                        active_since=now,
                        value=value,
                    )
                state.value = value
                state.annotations = self._annotations(spec, labels, value)
                if state.starts_at is None and now - state.active_since >= self.for_s:
                    state.starts_at = datetime.fromtimestamp(now, UTC)
                    changed.append(state)
        for key, state in list(self.states.items()):
            if key in seen:
                continue
            if state.starts_at is None or state.ends_at is not None:
                if state.ends_at is None:
                    del self.states[key]  # pending only: never fired, nothing to resolve
                continue
            state.ends_at = datetime.fromtimestamp(now, UTC)
            changed.append(state)
        for state in changed:
            self._unsent.add(self._group(state))
        return changed

    def _annotations(self, spec, labels: dict[str, str], value: float) -> dict[str, str]:
        def fill(template: str) -> str:
            text = template.replace("{{ $value }}", format(value, "g"))
            for name, label in labels.items():
                text = text.replace(f"{{{{ $labels.{name} }}}}", label)
            return (
                text.replace("{threshold}", format(self.thresholds.feedback_backlog, "g"))
                .replace("{margin}", format(self.thresholds.score_drop_margin, "g"))
                .replace("{samples}", format(self.thresholds.score_min_samples, "g"))
            )

        return {"summary": fill(spec.summary), "description": fill(spec.description)}

    @staticmethod
    def _group(state: AlertState) -> tuple[str, str]:
        return (state.labels["alertname"], state.labels.get("model", ""))

    # --- notification -----------------------------------------------------------
    def payloads(self) -> list[tuple[tuple[str, str], dict]]:
        """Webhook bodies due now: changed groups plus firing groups due a repeat."""
        now = self.clock()
        due = set(self._unsent)
        for state in self.states.values():
            if state.starts_at and not state.ends_at and state.last_sent is not None:
                if now - state.last_sent >= self.repeat_interval_s:
                    due.add(self._group(state))
        bodies = []
        for group in sorted(due):
            alerts = [
                s
                for s in self.states.values()
                if self._group(s) == group and s.starts_at is not None
            ]
            if alerts:
                bodies.append((group, self._payload(group, alerts)))
        return bodies

    def _payload(self, group: tuple[str, str], alerts: Iterable[AlertState]) -> dict:
        alerts = sorted(alerts, key=lambda s: s.fingerprint)
        rendered = [s.to_payload(self.metrics_url) for s in alerts]
        group_labels = {"alertname": group[0], "model": group[1]}
        common_labels = _common([a["labels"] for a in rendered])
        return {
            "version": "4",
            "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
            "truncatedAlerts": 0,
            "status": "firing" if any(a["status"] == "firing" for a in rendered) else "resolved",
            "receiver": RECEIVER,
            "groupLabels": group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": _common([a["annotations"] for a in rendered]),
            "externalURL": self.metrics_url.rsplit("/metrics", 1)[0],
            "alerts": rendered,
        }

    def notify(self) -> int:
        """POST every due payload; returns how many were delivered. Failures retry next time."""
        delivered = 0
        headers = {"Content-Type": "application/json"}
        if self.settings.trigger_token:
            headers["Authorization"] = f"Bearer {self.settings.trigger_token}"
        for group, body in self.payloads():
            try:
                response = self.client.post(self.webhook_url, json=body, headers=headers)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("alert webhook %s failed for %s: %s", self.webhook_url, group, exc)
                self._unsent.add(group)
                continue
            delivered += 1
            self._unsent.discard(group)
            now = self.clock()
            for key, state in list(self.states.items()):
                if self._group(state) == group:
                    state.last_sent = now
                    if state.ends_at is not None:
                        del self.states[key]  # resolved and told: forget it
        return delivered

    # --- one round ----------------------------------------------------------------
    def scrape(self) -> Series:
        response = self.client.get(self.metrics_url)
        response.raise_for_status()
        return parse_metrics(response.text)

    def tick(self) -> int:
        try:
            series = self.scrape()
        except httpx.HTTPError as exc:
            # like a down target: keep the current states rather than resolve on a blip
            log.warning("cannot scrape %s: %s", self.metrics_url, exc)
            return self.notify()
        self.evaluate(series)
        return self.notify()

    def close(self) -> None:
        if self._own_client and self.client is not None:
            self.client.close()


def _common(mappings: list[dict[str, str]]) -> dict[str, str]:
    if not mappings:
        return {}
    first = mappings[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in mappings[1:])}


def run_evaluator(
    settings: Settings,
    *,
    metrics_url: str,
    webhook_url: str | None = None,
    for_duration: str = "1m",
    interval_s: float | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Evaluate every ``interval_s`` until ``stop`` is set (or forever)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per scrape is noise
    interval = interval_s if interval_s is not None else settings.evaluator_interval_s
    evaluator = AlertEvaluator(
        settings,
        metrics_url=metrics_url,
        webhook_url=webhook_url,
        for_duration=for_duration,
    )
    stop = stop or threading.Event()
    log.info("alert evaluator: %s -> %s every %.1fs", metrics_url, evaluator.webhook_url, interval)
    try:
        while not stop.is_set():
            evaluator.tick()
            stop.wait(interval)
    finally:
        evaluator.close()
