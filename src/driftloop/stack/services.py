"""The service catalogue: which processes the embedded stack runs, and how.

For each service: its command line, port and health URL (:class:`Service`),
in start order (:data:`ORDER`); the addresses they reach each other at, the
environment they all share (one home, registry, store and trigger token) and
the generated Prometheus/Alertmanager configuration. Starting and watching the
processes is :mod:`driftloop.stack.supervisor`'s job.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from driftloop.security import private_dir
from driftloop.settings import Settings
from driftloop.stack import alerting_config

LOOPBACK = "127.0.0.1"
ALERTMANAGER_BINARY = "prometheus-alertmanager"
PROMETHEUS_BINARY = "prometheus"
# Start order; ``down`` stops in reverse.
ORDER = (
    "mlflow",
    "monitor",
    "predictor",
    "trigger",
    "alertmanager",
    "prometheus",
    "evaluator",
    "console",
)
# What a person opens in a browser, per service: the path of its UI.
UI_PATHS = {
    "console": "/",
    "mlflow": "/",
    "prometheus": "/alerts",
    "alertmanager": "/",
}
# A driftloop command run by the interpreter that runs us (no PATH lookup, no venv guessing).
DRIFTLOOP = [sys.executable, "-c", "import sys; from driftloop.cli import main; sys.exit(main())"]


# How long a condition must hold before a local alert fires (Prometheus rules and the
# built-in evaluator alike): seconds on a laptop, where the cluster rules say minutes.
LOCAL_ALERT_FOR = "2s"
# The rest of the local Prometheus path, condition -> webhook: scraping the monitor (whose
# gauges every alert but the predictor's store drops reads) and evaluating the rules
# every 500 ms, and no Alertmanager group wait -- each group is one alertname and model,
# so there is nothing to batch. At 1 s / 1 s / 1 s they added ~2 s to the `for` (the
# webhook ~4 s after the condition), now ~0.7 s; the built-in evaluator at its quick 1 s
# interval adds ~0.4 s. The predictor and trigger are still scraped every second.
LOCAL_MONITOR_SCRAPE = "500ms"
LOCAL_RULE_EVALUATION = "500ms"
LOCAL_GROUP_WAIT = "0s"


class StackError(RuntimeError):
    """A stack process could not be started or did not become healthy."""


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int | None = None
    health_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


def alerting_binaries() -> dict[str, str] | None:
    found = {name: shutil.which(name) for name in (PROMETHEUS_BINARY, ALERTMANAGER_BINARY)}
    return found if all(found.values()) else None


def is_remote_tracking(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


class ServiceCatalogue:
    """The services of one stack (a home, a model, an alerting choice) and their wiring."""

    def __init__(
        self,
        settings: Settings,
        model: str = "sentiment",
        *,
        alerting: str = "auto",  # auto | prometheus | evaluator | none
        repeat_interval: str = "30s",
    ) -> None:
        self.settings = settings
        self.model = model
        # captured once: callers may point MLFLOW_TRACKING_URI at our server afterwards
        self.backend_uri = settings.resolved_tracking_uri
        self.dir = Path(settings.home) / "stack"
        if alerting == "auto":
            alerting = "prometheus" if alerting_binaries() else "evaluator"
        if alerting == "prometheus" and not alerting_binaries():
            raise StackError(
                f"{PROMETHEUS_BINARY} and {ALERTMANAGER_BINARY} are not both installed; "
                "install them (apt-get install prometheus prometheus-alertmanager) or use "
                "--no-prometheus for the built-in evaluator"
            )
        self.alerting = alerting
        # how often Alertmanager re-sends a still-firing alert (the trigger dedupes them)
        self.repeat_interval = repeat_interval

    # --- addresses -------------------------------------------------------------
    @property
    def manages_mlflow(self) -> bool:
        return not is_remote_tracking(self.backend_uri)

    @property
    def tracking_uri(self) -> str:
        if self.manages_mlflow:
            return f"http://{LOOPBACK}:{self.settings.mlflow_port}"
        return self.backend_uri

    def url(self, name: str) -> str:
        port = {
            "mlflow": self.settings.mlflow_port,
            "predictor": self.settings.predictor_port,
            "monitor": self.settings.monitor_port,
            "trigger": self.settings.trigger_port,
            "prometheus": self.settings.prometheus_port,
            "alertmanager": self.settings.alertmanager_port,
            "console": self.settings.console_port,
        }[name]
        return f"http://{LOOPBACK}:{port}"

    @property
    def trigger_webhook(self) -> str:
        return f"{self.url('trigger')}/alerts"

    @property
    def token_file(self) -> Path:
        return self.dir / "trigger-token"

    @property
    def monitor_token_file(self) -> Path:
        return self.dir / "monitor-token"

    def _stack_token(self, path: Path) -> str:
        if not path.is_file():
            private_dir(self.dir)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def trigger_token(self) -> str:
        """The configured token, else one generated once for this stack (file mode 0600)."""
        if self.settings.trigger_token:
            return self.settings.trigger_token
        return self._stack_token(self.token_file)

    def monitor_token(self) -> str:
        """The token the payload logger sends the monitor: configured, else generated once."""
        if self.settings.monitor_token:
            return self.settings.monitor_token
        return self._stack_token(self.monitor_token_file)

    # --- what runs ---------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        """The environment every stack process shares: one home, registry, store, token."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
        for name, value in self.settings.model_dump().items():
            if value is None:
                continue
            if isinstance(value, dict | list):
                env[f"DRIFTLOOP_{name.upper()}"] = json.dumps(value)
            elif isinstance(value, str | int | float | bool | Path):
                env[f"DRIFTLOOP_{name.upper()}"] = str(value)
        # MLFLOW_TRACKING_URI is the one source of truth; its DRIFTLOOP_ twin would conflict
        env.pop("DRIFTLOOP_TRACKING_URI", None)
        env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        env["DRIFTLOOP_HOME"] = str(self.settings.home)
        env["DRIFTLOOP_TRIGGER_TOKEN"] = self.trigger_token()
        env["DRIFTLOOP_MONITOR_TOKEN"] = self.monitor_token()
        env["DRIFTLOOP_TRIGGER_HOST"] = LOOPBACK
        env["DRIFTLOOP_LOGGER_URL"] = self.settings.logger_url or f"{self.url('monitor')}/"
        env["DRIFTLOOP_EVALUATOR_WEBHOOK_URL"] = self.trigger_webhook
        env["DRIFTLOOP_TRIGGER_URL"] = self.trigger_webhook
        env["DRIFTLOOP_PROMETHEUS_URL"] = self.url("prometheus")
        env["DRIFTLOOP_ALERTMANAGER_URL"] = self.url("alertmanager")
        env["PYTHONUNBUFFERED"] = "1"
        # MLflow's telemetry fetches its config from the internet in a thread; when that
        # fails it deletes _MLFLOW_TELEMETRY_SESSION_ID from os.environ, and a REST call
        # iterating os.environ at that moment fails with KeyError (seen: a retraining's
        # register step). The stack's processes and the pipelines they launch send none,
        # unless the person asked for it.
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        return env

    def services(self) -> list[Service]:
        s = self.settings
        services = []
        if self.manages_mlflow:
            backend = self.backend_uri
            services.append(
                Service(
                    "mlflow",
                    [
                        str(Path(sys.executable).parent / "mlflow"),
                        "server",
                        "--backend-store-uri",
                        backend,
                        "--default-artifact-root",
                        s.artifact_root.resolve().as_uri(),
                        "--host",
                        LOOPBACK,
                        "--port",
                        str(s.mlflow_port),
                        "--workers",
                        "1",
                    ],
                    s.mlflow_port,
                    f"{self.url('mlflow')}/health",
                    # MLflow's server-side jobs (GenAI judges, trace rollups) are a job
                    # runner and seven huey consumers, ~45 CPU-seconds to start on 2 cores
                    # while v1 trains; nothing driftloop does submits one
                    env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                )
            )
        services.append(
            Service(
                "monitor",
                [
                    *DRIFTLOOP,
                    "monitor",
                    self.model,
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(s.monitor_port),
                ],
                s.monitor_port,
                f"{self.url('monitor')}/healthz",
            )
        )
        services.append(
            Service(
                "predictor",
                [
                    *DRIFTLOOP,
                    "serve",
                    self.model,
                    "--http-port",
                    str(s.predictor_port),
                    "--grpc-port",
                    str(s.predictor_grpc_port),
                ],
                s.predictor_port,
                f"{self.url('predictor')}/v2/health/ready",
            )
        )
        services.append(
            Service(
                "trigger",
                [*DRIFTLOOP, "trigger", "--host", LOOPBACK, "--port", str(s.trigger_port)],
                s.trigger_port,
                f"{self.url('trigger')}/healthz",
            )
        )
        if self.alerting == "prometheus":
            binaries = alerting_binaries()
            services.append(
                Service(
                    "alertmanager",
                    [
                        binaries[ALERTMANAGER_BINARY],
                        f"--config.file={self.dir / 'alertmanager.yml'}",
                        f"--storage.path={self.dir / 'alertmanager-data'}",
                        f"--web.listen-address={LOOPBACK}:{s.alertmanager_port}",
                        "--cluster.listen-address=",
                    ],
                    s.alertmanager_port,
                    f"{self.url('alertmanager')}/-/ready",
                )
            )
            services.append(
                Service(
                    "prometheus",
                    [
                        binaries[PROMETHEUS_BINARY],
                        f"--config.file={self.dir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
                        f"--web.listen-address={LOOPBACK}:{s.prometheus_port}",
                    ],
                    s.prometheus_port,
                    f"{self.url('prometheus')}/-/ready",
                )
            )
        elif self.alerting == "evaluator":
            services.append(
                Service(
                    "evaluator",
                    [
                        *DRIFTLOOP,
                        "monitor",
                        self.model,
                        "--evaluate-alerts",
                        "--host",
                        LOOPBACK,
                        "--port",
                        str(s.monitor_port),
                        "--alert-for",
                        LOCAL_ALERT_FOR,
                    ],
                    note="built-in alert evaluator (Prometheus/Alertmanager not used)",
                )
            )
        services.append(
            Service(
                "console",
                [*DRIFTLOOP, "ui", "--host", LOOPBACK, "--port", str(s.console_port)],
                s.console_port,
                f"{self.url('console')}/healthz",
                note="web console (driftloop ui)",
            )
        )
        return services

    def ui_urls(self) -> dict[str, str]:
        """Every browser UI this stack serves, by service (what ``driftloop up`` prints)."""
        names = {service.name for service in self.services()}
        urls = {name: self.url(name) + path for name, path in UI_PATHS.items() if name in names}
        if not self.manages_mlflow and self.tracking_uri.startswith(("http://", "https://")):
            urls["mlflow"] = self.tracking_uri  # a remote MLflow server's own UI
        return urls

    def write_alerting_configs(self, names: set[str]) -> None:
        if "alertmanager" in names:
            self.trigger_token()
            alerting_config.write_yaml(
                self.dir / "alertmanager.yml",
                alerting_config.alertmanager_config(
                    self.trigger_webhook,
                    token_file=self.token_file,
                    group_wait=LOCAL_GROUP_WAIT,
                    repeat_interval=self.repeat_interval,
                ),
            )
        if "prometheus" not in names:
            return
        alerting_config.write_yaml(
            self.dir / "alert_rules.yaml",
            alerting_config.stack_rules(
                self.settings, evaluation_interval=LOCAL_RULE_EVALUATION, max_for=LOCAL_ALERT_FOR
            ),
        )
        targets = {
            "driftloop-predictor": f"{LOOPBACK}:{self.settings.predictor_port}",
            "driftloop-monitor": f"{LOOPBACK}:{self.settings.monitor_port}",
            "driftloop-trigger": f"{LOOPBACK}:{self.settings.trigger_port}",
        }
        alerting_config.write_yaml(
            self.dir / "prometheus.yml",
            alerting_config.prometheus_config(
                targets,
                rules_path=self.dir / "alert_rules.yaml",
                alertmanager=f"{LOOPBACK}:{self.settings.alertmanager_port}",
                evaluation_interval=LOCAL_RULE_EVALUATION,
                job_scrape_intervals={"driftloop-monitor": LOCAL_MONITOR_SCRAPE},
            ),
        )
