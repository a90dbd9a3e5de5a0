"""The one settings object.

Every knob is a ``DRIFTLOOP_*`` environment variable (or a field passed in
code). Settings that the ecosystem already names -- ``MLFLOW_TRACKING_URI``,
``KF_PIPELINES_ENDPOINT``, ``KUBECONFIG`` -- are read from their own variables
and are never overridden by a ``DRIFTLOOP_*`` twin: where both are set and
disagree, :func:`get_settings` refuses to guess and raises.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsConflictError(ValueError):
    """A DRIFTLOOP_* variable disagrees with the ecosystem variable it shadows."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLOOP_", extra="ignore")

    # --- where things run -------------------------------------------------
    target: Literal["local", "kubernetes"] = "local"
    home: Path = Field(default_factory=lambda: Path.home() / ".driftloop")
    namespace: str = "driftloop"

    # --- registry (MLflow) -------------------------------------------------
    # None means: MLFLOW_TRACKING_URI if set, else SQLite under ``home``.
    tracking_uri: str | None = None
    experiment: str = "driftloop"
    min_improvement: float = 0.01  # relative gain a challenger needs
    # absolute floor for a first champion; None: each blueprint's own (a pipeline
    # run's blueprint option "floor" overrides both)
    promotion_floor: float | None = None
    # Optuna studies of training searches (any SQLAlchemy URL, e.g. postgresql://...);
    # None means SQLite under ``home`` (optuna.db)
    optuna_storage: str | None = None

    # --- pipelines (KFP) ----------------------------------------------------
    base_image: str = "ghcr.io/driftloop/driftloop:0.1.0"
    pipeline_root: Path | None = None  # kfp.local outputs; default home/pipeline-runs
    kfp_host: str | None = None  # None means KF_PIPELINES_ENDPOINT
    seed: int = 42

    # --- serving ------------------------------------------------------------
    # what `driftloop serve NAME` loads when --model-uri is not given (the cluster
    # runtime sets it; `driftloop deploy` patches it); None means models:/NAME@alias
    model_uri: str | None = None
    store_url: str | None = None  # None means SQLite under ``home``
    api_token: str | None = None  # bearer token / API key for predict+feedback
    # where `driftloop serve` binds REST and gRPC (DRIFTLOOP_PREDICTOR_HOST); a non-loopback
    # address needs api_token, or insecure=True (DRIFTLOOP_INSECURE / --insecure) to run open
    predictor_host: str = "127.0.0.1"
    insecure: bool = False
    # request bodies above this many bytes answer 413 (Content-Length or streamed/chunked)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    low_confidence_threshold: float = 0.6
    reload_interval_s: float = 5.0
    max_instances: int = 256
    max_text_chars: int = 10_000
    # adaptive batching (serving.batching), KServe's batcher semantics per model: concurrent
    # requests share one model call of at most max_batch_size instances (1: no batching);
    # a request that finds the model idle waits at most max_latency_ms for others
    max_batch_size: int = Field(default=32, ge=1, le=10_000)
    max_latency_ms: float = Field(default=5.0, gt=0.0, le=60_000.0)
    store_queue_size: int = 10_000
    # off: no prediction rows are written (feedback then answers 503); on is the product
    prediction_store: bool = True
    retention_days: int = 30
    logger_url: str | None = None  # payload-logger sink (CloudEvents)
    logger_queue_size: int = 10_000
    logger_max_retries: int = 3
    # events per POST when several are queued; 1 = one binary-mode event per POST, as KServe
    logger_batch_max: int = Field(default=64, ge=1, le=10_000)
    # how long the sender lets a batch gather after the first event (0: send what is queued)
    logger_batch_wait_ms: float = Field(default=50.0, ge=0.0, le=10_000.0)

    # --- monitor / alerts / trigger -----------------------------------------
    monitor_window: int = 200
    monitor_host: str = "127.0.0.1"  # 0.0.0.0 for the sidecar
    monitor_port: int = 8090
    monitor_config: Path | None = None  # detector YAML; None means the built-in default
    monitor_pending_ttl_s: float = 60.0  # unpaired request/response halves expire after this
    monitor_max_pending: int = 10_000
    monitor_feedback_poll_s: float = 15.0
    # bearer token the monitor's event intake requires (the payload logger sends it);
    # None: the intake takes events from loopback clients only (a pod's own sidecars)
    monitor_token: str | None = None
    evaluator_interval_s: float = 15.0  # built-in alert evaluator (no Prometheus installed)
    evaluator_webhook_url: str | None = None  # None means the trigger on 127.0.0.1:8095/alerts
    feedback_backlog_threshold: int = 50
    # LiveScoreDrop: the live primary metric is worse than the champion's test value by more
    # than this share of it (RMSE above test x 1.1, macro-F1 below test x 0.9), over at
    # least score_min_samples prediction/ground-truth pairs (the newest live_score_pairs)
    score_drop_margin: float = 0.10
    score_min_samples: int = 30
    live_score_pairs: int = 500
    trigger_token: str | None = None
    trigger_cooldown_s: float = 600.0
    # retraining runs in flight at once, all models together; more alerts are "busy"
    trigger_max_concurrent_runs: int = Field(default=2, ge=1)
    trigger_host: str = "127.0.0.1"
    trigger_port: int = 8095
    trigger_url: str | None = None  # where alerts are posted; None means trigger_host:trigger_port
    retrain_pipeline: str = "pipelines.retraining:retraining_pipeline"  # kfp.local target
    # "module:function" that runs a KFP pipeline on this machine: fn(pipeline, arguments,
    # settings); configuration, so the trigger never imports the pipelines package
    retrain_runner: str = "pipelines.local_run:run_pipeline_locally"
    retrain_package: Path | None = None  # compiled YAML for KFP; None: pipelines/compiled/
    retrain_arguments: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # --- local stack (driftloop up) ---------------------------------------------
    mlflow_port: int = 5000
    predictor_port: int = 8080
    predictor_grpc_port: int = 8081
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    console_port: int = 8088  # driftloop ui
    stack_health_timeout_s: float = 90.0
    prometheus_url: str | None = None
    alertmanager_url: str | None = None

    @field_validator("min_improvement", "low_confidence_threshold")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1")
        return value

    # --- resolved values ----------------------------------------------------
    @property
    def resolved_tracking_uri(self) -> str:
        ecosystem = os.environ.get("MLFLOW_TRACKING_URI")
        if ecosystem and self.tracking_uri and ecosystem != self.tracking_uri:
            raise SettingsConflictError(
                f"DRIFTLOOP_TRACKING_URI={self.tracking_uri!r} disagrees with "
                f"MLFLOW_TRACKING_URI={ecosystem!r}; unset one of them"
            )
        return ecosystem or self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.home / 'store.db'}"

    @property
    def resolved_pipeline_root(self) -> Path:
        return self.pipeline_root or self.home / "pipeline-runs"

    @property
    def resolved_kfp_host(self) -> str | None:
        ecosystem = os.environ.get("KF_PIPELINES_ENDPOINT")
        if ecosystem and self.kfp_host and ecosystem != self.kfp_host:
            raise SettingsConflictError(
                f"DRIFTLOOP_KFP_HOST={self.kfp_host!r} disagrees with "
                f"KF_PIPELINES_ENDPOINT={ecosystem!r}; unset one of them"
            )
        return ecosystem or self.kfp_host

    def ensure_home(self) -> Path:
        # a new home is private (0700): it holds tokens, logs and ledgers
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.home


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build ``Settings(...)`` directly instead."""
    return Settings()
