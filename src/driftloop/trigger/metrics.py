"""Prometheus metrics of the trigger (one registry per trigger instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class TriggerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs_total = Counter(
            "driftloop_retrain_runs_total",
            "Retraining decisions (launched, deduplicated, cooling_down, busy, rejected, "
            "resolved_ignored) and run results (succeeded, failed, lost), by alert reason.",
            ["model", "reason", "outcome"],
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "driftloop_retrain_run_duration_seconds",
            "Wall time of finished retraining runs.",
            ["model", "outcome"],
            buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 3600, float("inf")),
            registry=self.registry,
        )
        self.runs_active = Gauge(
            "driftloop_retrain_runs_active",
            "Retraining runs in flight.",
            ["model"],
            registry=self.registry,
        )
        self.webhooks_total = Counter(
            "driftloop_trigger_webhooks_total",
            "Webhook requests received, by HTTP status returned.",
            ["code"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
