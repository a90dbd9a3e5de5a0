"""A model's drift p-values and live score over time.

From Prometheus (``query_range`` over the monitor's ``driftloop_drift_p_value``,
``driftloop_live_score`` and ``driftloop_champion_test_score``) when a Prometheus
URL is configured, else from the monitor itself (its last windows and current
gauges): the console shows what the loop acted on, from where the loop read it.
When neither answers (the stack was stopped: after ``driftloop demo`` or
``driftloop down``), from the copy :func:`record_history` wrote under the home
just before the stack stopped.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from driftloop.console.config import ConsoleConfig

P_VALUE = "driftloop_drift_p_value"
LIVE_SCORE = "driftloop_live_score"
TEST_SCORE = "driftloop_champion_test_score"
GREATER_IS_BETTER = "driftloop_score_greater_is_better"
TIMEOUT_S = 3.0
# the models Prometheus has drift or live-score samples of
MODELS_QUERY = f'group by (model) ({{__name__=~"{P_VALUE}|{LIVE_SCORE}"}})'
PAGE_POINTS = 240  # samples per series a page's plot asks Prometheus for
RECORDED_DIR = "history"  # under the home: one JSON file per model
# Prometheus answers at most 11,000 points per series; a recording keeps the loop's
# seconds-apart steps visible over a demo yet covers a day
RECORDING_POINTS = 10_000


@dataclass
class Series:
    name: str
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, at: datetime, value: float) -> None:
        if math.isfinite(value):
            self.times.append(at)
            self.values.append(value)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "times": [t.isoformat() for t in self.times],
            "values": self.values,
        }

    @classmethod
    def from_json(cls, data: dict) -> Series:
        series = cls(str(data["name"]))
        for at, value in zip(data["times"], data["values"], strict=True):
            series.add(datetime.fromisoformat(at), float(value))
        return series


@dataclass
class ModelHistory:
    source: str  # prometheus | monitor | none
    drift: list[Series] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    live: Series | None = None
    test: Series | None = None
    greater_is_better: bool | None = None
    alerts: list[dict] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "drift": [s.to_json() for s in self.drift],
            "thresholds": self.thresholds,
            "live": self.live.to_json() if self.live else None,
            "test": self.test.to_json() if self.test else None,
            "greater_is_better": self.greater_is_better,
            "alerts": self.alerts,
        }

    @classmethod
    def from_json(cls, data: dict) -> ModelHistory:
        return cls(
            str(data["source"]),
            drift=[Series.from_json(s) for s in data["drift"]],
            thresholds={k: float(v) for k, v in data["thresholds"].items()},
            live=Series.from_json(data["live"]) if data.get("live") else None,
            test=Series.from_json(data["test"]) if data.get("test") else None,
            greater_is_better=data.get("greater_is_better"),
            alerts=list(data.get("alerts") or []),
        )

    @property
    def latest_p_values(self) -> dict[str, float]:
        return {s.name: s.values[-1] for s in self.drift if s.values}

    @property
    def latest_live(self) -> float | None:
        return self.live.values[-1] if self.live and self.live.values else None

    @property
    def latest_test(self) -> float | None:
        return self.test.values[-1] if self.test and self.test.values else None


def label_matcher(model: str) -> str:
    """``{model="NAME"}`` with the name escaped as a PromQL string."""
    escaped = model.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{model="{escaped}"}}'


def thresholds_for(config: ConsoleConfig, detectors: list[str]) -> dict[str, float]:
    """Each detector's p-value threshold, as the monitor computes it (Bonferroni share)."""
    from driftloop.monitor.config import load_config

    monitor_config = load_config(config.monitor_config)
    specs = {spec.name: spec for spec in monitor_config.detectors or []}
    share = monitor_config.p_val / max(len(detectors), 1)
    return {
        name: monitor_config.detector_p_val(specs[name]) if name in specs else share
        for name in detectors
    }


class PrometheusHistory:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, params: dict) -> list[dict]:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=TIMEOUT_S)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(body.get("error", "Prometheus refused the query"))
        return body["data"]["result"] if "result" in body["data"] else body["data"]

    def query_range(self, query: str, seconds: float, points: int = PAGE_POINTS) -> list[dict]:
        end = time.time()
        step = max(seconds / points, 1.0)
        return self.get(
            "/api/v1/query_range",
            {"query": query, "start": end - seconds, "end": end, "step": f"{step:.0f}s"},
        )

    def series(
        self, query: str, by: str, seconds: float, points: int = PAGE_POINTS
    ) -> list[Series]:
        """One series per value of label ``by`` (versions of one detector are joined)."""
        merged: dict[str, Series] = {}
        for result in self.query_range(query, seconds, points):
            name = result["metric"].get(by, by)
            series = merged.setdefault(name, Series(name))
            for stamp, value in result["values"]:
                series.add(datetime.fromtimestamp(float(stamp), UTC), float(value))
        for series in merged.values():
            order = sorted(range(len(series.times)), key=series.times.__getitem__)
            series.times = [series.times[i] for i in order]
            series.values = [series.values[i] for i in order]
        return sorted(merged.values(), key=lambda s: s.name)

    def alerts(self, model: str) -> list[dict]:
        alerts = self.get("/api/v1/alerts", {}).get("alerts", [])
        return [
            {
                "name": a["labels"].get("alertname", "?"),
                "state": a.get("state", "?"),
                "since": a.get("activeAt", ""),
                "summary": a.get("annotations", {}).get("summary", ""),
            }
            for a in alerts
            if a.get("labels", {}).get("model") == model
        ]


def from_prometheus(
    config: ConsoleConfig, model: str, seconds: float, points: int = PAGE_POINTS
) -> ModelHistory:
    prometheus = PrometheusHistory(config.prometheus_url or "")
    match = label_matcher(model)

    def series(query: str, by: str) -> list[Series]:
        return prometheus.series(query, by, seconds, points)

    drift = series(f"{P_VALUE}{match}", "detector")
    live = series(f"max({LIVE_SCORE}{match})", "live score")
    test = series(f"max({TEST_SCORE}{match})", "champion test score")
    direction = series(f"max({GREATER_IS_BETTER}{match})", "direction")
    history = ModelHistory(
        "prometheus",
        drift=drift,
        thresholds=thresholds_for(config, [s.name for s in drift]),
        live=live[0] if live else None,
        test=test[0] if test else None,
        greater_is_better=(
            bool(direction[0].values[-1]) if direction and direction[0].values else None
        ),
        alerts=prometheus.alerts(model),
    )
    if not drift and not live:
        history.note = f"Prometheus at {config.prometheus_url} has no samples for {model!r} yet"
    return history


def from_monitor(config: ConsoleConfig, model: str) -> ModelHistory:
    """The monitor's last windows (numbered, not timed) and its current score gauges."""
    from prometheus_client.parser import text_string_to_metric_families

    base = config.monitor_url.rstrip("/")
    status = httpx.get(f"{base}/status", timeout=TIMEOUT_S).json()
    if status.get("model") != model:
        return ModelHistory("none", note=f"the monitor at {base} watches {status.get('model')!r}")
    now = datetime.now(UTC)
    windows = status.get("last_windows", [])
    drift: dict[str, Series] = {}
    for index, window in enumerate(windows):
        at = datetime.fromtimestamp(now.timestamp() - (len(windows) - index), UTC)
        for name, result in window.get("detectors", {}).items():
            if result.get("p_value") is not None:
                drift.setdefault(name, Series(name)).add(at, float(result["p_value"]))
    gauges: dict[str, float] = {}
    text = httpx.get(f"{base}/metrics", timeout=TIMEOUT_S).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") == model:
                gauges[sample.name] = sample.value
    live = Series("live score")
    test = Series("champion test score")
    if LIVE_SCORE in gauges:
        live.add(now, gauges[LIVE_SCORE])
    if TEST_SCORE in gauges:
        test.add(now, gauges[TEST_SCORE])
    elif status.get("test_score") is not None:
        test.add(now, float(status["test_score"]))
    series = sorted(drift.values(), key=lambda s: s.name)
    return ModelHistory(
        "monitor",
        drift=series,
        thresholds=thresholds_for(config, [s.name for s in series]),
        live=live,
        test=test,
        greater_is_better=bool(gauges[GREATER_IS_BETTER]) if GREATER_IS_BETTER in gauges else None,
        note="no Prometheus configured: the monitor's last windows and current scores",
    )


def recorded_path(home: Path, model: str) -> Path:
    # model names are registry names: anything but a path separator may appear
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
    return Path(home) / RECORDED_DIR / f"{safe}.json"


def record_history(config: ConsoleConfig, model: str, seconds: float) -> Path | None:
    """Keep the last ``seconds`` of ``model``'s history (from Prometheus, else the monitor)
    under the home, for the console to show once the stack is stopped. None: nothing to keep
    (neither answered, or they had no samples)."""
    history = _live_history(config, model, seconds, points=RECORDING_POINTS)
    if history.source == "none" or not (history.drift or history.latest_live is not None):
        return None
    path = recorded_path(config.home, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": model, "recorded_at": datetime.now(UTC).isoformat(), **history.to_json()}
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(record))
    staging.replace(path)  # a console reading meanwhile sees the old copy or the new one
    return path


def models_seen(config: ConsoleConfig, fallback: list[str]) -> list[str]:
    """Every model the configured Prometheus has drift or live-score samples of, else the
    model the monitor watches, else ``fallback`` (neither answers)."""
    if config.prometheus_url:
        try:
            found = PrometheusHistory(config.prometheus_url).get(
                "/api/v1/query", {"query": MODELS_QUERY}
            )
            models = sorted({r["metric"].get("model", "") for r in found} - {""})
            if models:
                return models
        except (httpx.HTTPError, ValueError, KeyError):
            pass
    try:
        status = httpx.get(f"{config.monitor_url.rstrip('/')}/status", timeout=TIMEOUT_S)
        model = status.json().get("model")
    except (httpx.HTTPError, ValueError, AttributeError):
        return fallback
    return [model] if isinstance(model, str) and model else fallback


def record_stack_history(config: ConsoleConfig, fallback: list[str], seconds: float) -> list[Path]:
    """:func:`record_history` for every model the stack has history of; what was kept."""
    kept = (record_history(config, model, seconds) for model in models_seen(config, fallback))
    return [path for path in kept if path is not None]


def recorded_history(config: ConsoleConfig, model: str) -> ModelHistory | None:
    """The copy :func:`record_history` kept, or None if there is none (or it is unreadable)."""
    path = recorded_path(config.home, model)
    try:
        data = json.loads(path.read_text())
        history = ModelHistory.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ModelHistory("none", note=f"recorded history {path} unreadable: {exc}")
    history.note = (
        f"recorded from {history.source} at {data.get('recorded_at', '?')[:19]} "
        "when the stack stopped"
    )
    history.source = f"recorded ({history.source})"
    return history


def _live_history(
    config: ConsoleConfig, model: str, seconds: float, points: int = PAGE_POINTS
) -> ModelHistory:
    """Prometheus if configured, else the monitor; a note says why either is missing."""
    problems = []
    if config.prometheus_url:
        try:
            return from_prometheus(config, model, seconds, points)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            problems.append(f"Prometheus at {config.prometheus_url}: {type(exc).__name__}")
    try:
        history = from_monitor(config, model)
    except (httpx.HTTPError, ValueError) as exc:
        problems.append(f"monitor at {config.monitor_url}: {type(exc).__name__}")
        return ModelHistory("none", note="; ".join(problems) + " (not reachable)")
    if problems:
        history.note = "; ".join(problems) + " -- " + history.note
    return history


def model_history(config: ConsoleConfig, model: str, seconds: float = 3600.0) -> ModelHistory:
    """The running stack's history; when nothing of it answers, the copy kept when it
    stopped (whole: a stopped loop's history does not age out of the page)."""
    history = _live_history(config, model, seconds)
    if history.source != "none":
        return history
    recorded = recorded_history(config, model)
    if recorded is None:
        return history
    recorded.note = f"{history.note}; {recorded.note}"
    return recorded
