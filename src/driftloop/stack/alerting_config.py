"""Generated configuration for the local stack's Prometheus and Alertmanager.

Prometheus scrapes the predictor, the monitor and the trigger and evaluates
driftloop's one rules file (``driftloop/monitor/alert_rules.yaml``) with short
intervals so a laptop demo fires in seconds, not minutes. Alertmanager sends
every alert to the trigger's webhook with the trigger's bearer token, read
from a file so the token never lands in a config file.

What an alert waits for on its way, beyond the rule's own ``for``: the scrape
that sees the monitor's gauge change, the rule evaluation that reads it and
Alertmanager's ``group_wait``. Locally those three are sub-second (the monitor
scraped and the rules evaluated every 500 ms, no group wait), so the webhook
follows the condition by its ``for`` plus under a second, about what the built-in
evaluator takes; the cluster's Prometheus and Alertmanager keep their own, longer,
timings.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

RULES_PACKAGE = "driftloop.monitor"
RULES_FILE = "alert_rules.yaml"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(value: str) -> float:
    """Seconds in a Prometheus duration ("30s", "5m", "1h30m")."""
    total, rest = 0.0, str(value).strip()
    for part in re.findall(r"\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)", rest):
        number, unit = _DURATION.match(part).groups()
        total += float(number) * _SECONDS[unit]
    if not rest or "".join(re.findall(r"\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)", rest)) != rest:
        raise ValueError(f"not a Prometheus duration: {value!r}")
    return total


def read_rules(path: Path | None = None) -> dict[str, Any]:
    """driftloop's alert rules: the packaged file unless ``path`` is given."""
    if path is not None:
        text = Path(path).read_text()
    else:
        text = resources.files(RULES_PACKAGE).joinpath(RULES_FILE).read_text()
    rules = yaml.safe_load(text)
    if not isinstance(rules, dict) or not isinstance(rules.get("groups"), list):
        raise ValueError(f"{path or RULES_FILE}: expected a Prometheus rules file with 'groups'")
    return rules


def local_rules(
    rules: dict[str, Any], *, evaluation_interval: str = "1s", max_for: str = "2s"
) -> dict[str, Any]:
    """The same rules, evaluated every ``evaluation_interval`` and pending at most ``max_for``.

    Expressions, labels and annotations are untouched: only timing shrinks.
    """
    cap = duration_seconds(max_for)
    groups = []
    for group in rules["groups"]:
        group = dict(group, interval=evaluation_interval)
        shortened = []
        for rule in group.get("rules", []):
            rule = dict(rule)
            if "for" in rule and duration_seconds(str(rule["for"])) > cap:
                rule["for"] = max_for
            shortened.append(rule)
        group["rules"] = shortened
        groups.append(group)
    return {"groups": groups}


def stack_rules(settings, *, evaluation_interval: str = "1s", max_for: str = "2s") -> dict:
    """driftloop's rules with this stack's thresholds, timed for a laptop."""
    from driftloop.monitor.rules import render_rules

    rendered = render_rules(settings, for_duration=max_for, interval=evaluation_interval)
    return local_rules(rendered, evaluation_interval=evaluation_interval, max_for=max_for)


def prometheus_config(
    targets: dict[str, str],
    *,
    rules_path: Path,
    alertmanager: str | None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    job_scrape_intervals: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``targets``: job name -> ``host:port`` serving ``/metrics``; ``job_scrape_intervals``:
    job name -> its own scrape interval (and timeout) instead of ``scrape_interval``."""
    job_scrape_intervals = job_scrape_intervals or {}
    unknown = sorted(set(job_scrape_intervals) - set(targets))
    if unknown:
        raise ValueError(f"job_scrape_intervals: no target for job(s) {', '.join(unknown)}")
    for value in (scrape_interval, evaluation_interval, *job_scrape_intervals.values()):
        duration_seconds(value)  # fail here, not when Prometheus loads the file

    def scrape_config(job: str, target: str) -> dict[str, Any]:
        config = {"job_name": job, "metrics_path": "/metrics"}
        if job in job_scrape_intervals:
            interval = job_scrape_intervals[job]
            config.update(scrape_interval=interval, scrape_timeout=interval)
        return {**config, "static_configs": [{"targets": [target]}]}

    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "scrape_timeout": scrape_interval,
        },
        "rule_files": [str(rules_path)],
        "scrape_configs": [scrape_config(job, target) for job, target in targets.items()],
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def alertmanager_config(
    webhook_url: str,
    *,
    token_file: Path | None,
    group_wait: str = "1s",
    group_interval: str = "5s",
    repeat_interval: str = "30s",
) -> dict[str, Any]:
    """Route everything to the trigger; it dedupes repeats itself (fingerprint + startsAt)."""
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True, "max_alerts": 0}
    if token_file is not None:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
        }
    return {
        "route": {
            "receiver": "driftloop-trigger",
            "group_by": ["alertname", "model"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "driftloop-trigger", "webhook_configs": [webhook]}],
    }


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
