"""Read-only views of the running stack for the demo: monitor gauges, alerts, trigger."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from driftloop.stack.supervisor import Stack


def monitor_gauges(stack: Stack, model: str) -> dict[str, float]:
    """``driftloop_*`` samples of the monitor labelled with ``model`` (first per name)."""
    try:
        text = httpx.get(f"{stack.url('monitor')}/metrics", timeout=3).text
    except httpx.HTTPError:
        return {}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("driftloop_") and sample.labels.get("model") == model:
                values.setdefault(sample.name, sample.value)
    return values


def prometheus_alerts(stack: Stack) -> list[dict[str, Any]]:
    """Alerts Prometheus holds right now (pending or firing); [] without Prometheus."""
    if stack.alerting != "prometheus":
        return []
    try:
        response = httpx.get(f"{stack.url('prometheus')}/api/v1/alerts", timeout=3)
        return response.json()["data"]["alerts"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []


def trigger_json(stack: Stack, path: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {stack.trigger_token()}"}
    try:
        response = httpx.get(f"{stack.url('trigger')}{path}", headers=headers, timeout=5)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return []
    return body.get(path.strip("/").split("?")[0], [])
