"""Where the console finds the loop: registry, store, predictor, monitor, trigger, Prometheus.

Built from the one settings object, so ``driftloop ui`` next to ``driftloop up``
(or inside its environment) needs no flags; each address can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from driftloop.settings import Settings

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ConsoleConfig:
    tracking_uri: str
    store_url: str
    home: Path
    predictor_url: str
    monitor_url: str
    trigger_url: str
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    predictor_token: str | None = None
    # what a person or script must present to use the console (None: open, loopback only)
    access_token: str | None = None
    trigger_token: str | None = None
    monitor_config: Path | None = None
    low_confidence_threshold: float = 0.6

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ConsoleConfig:
        values = {
            "tracking_uri": settings.resolved_tracking_uri,
            "store_url": settings.resolved_store_url,
            "home": Path(settings.home),
            "predictor_url": f"http://{LOOPBACK}:{settings.predictor_port}",
            "monitor_url": f"http://{LOOPBACK}:{settings.monitor_port}",
            "trigger_url": f"http://{LOOPBACK}:{settings.trigger_port}",
            "prometheus_url": settings.prometheus_url,
            "alertmanager_url": settings.alertmanager_url,
            "predictor_token": settings.api_token,
            # the predictor's token guards the console too: one Secret, one login
            "access_token": settings.api_token,
            "trigger_token": settings.trigger_token or _stack_token(settings.home, "trigger-token"),
            "monitor_config": settings.monitor_config,
            "low_confidence_threshold": settings.low_confidence_threshold,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @classmethod
    def for_stack(cls, stack) -> ConsoleConfig:  # noqa: ANN001 - stack.supervisor.Stack
        """Pointed at a local stack's own processes (its ports, its Prometheus if it runs)."""
        prometheus = stack.url("prometheus") if stack.running_pid("prometheus") else None
        return cls.from_settings(
            stack.settings,
            prometheus_url=prometheus,
            monitor_url=stack.url("monitor"),
            trigger_url=stack.url("trigger"),
        )


def _stack_token(home: Path, name: str) -> str | None:
    """The token ``driftloop up`` generated for its trigger (read, never created here)."""
    path = Path(home) / "stack" / name
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
