"""Every Prometheus metric the predictor exports, in one place.

They live in prometheus_client's default registry, which KServe's ``/metrics``
serves. With ``--workers > 1`` each worker process counts for itself (as
KServe's own histograms do).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "driftloop_requests_total",
    "HTTP requests to the predictor by endpoint and status code.",
    ["model", "endpoint", "status"],
)
REQUEST_LATENCY = Histogram(
    "driftloop_request_latency_seconds",
    "Wall time of predictor HTTP requests.",
    ["model", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PREDICTIONS = Counter(
    "driftloop_predictions_total",
    "Texts classified, by served version and predicted label.",
    ["model", "version", "label"],
)
MODEL_VERSION_INFO = Gauge(
    "driftloop_model_version_info",
    "1 for the model version this process currently serves.",
    ["model", "version"],
)
MODEL_RELOADS = Counter(
    "driftloop_model_reloads_total",
    "Hot reloads of a model, by outcome.",
    ["model", "outcome"],
)
MODEL_RELOAD_SECONDS = Histogram(
    "driftloop_model_reload_seconds",
    "Time to load a new model version off the request path.",
    ["model"],
)
BATCH_SIZE = Histogram(
    "driftloop_batch_size",
    "Instances per model call under adaptive batching (serving.batching).",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_WAIT_SECONDS = Histogram(
    "driftloop_batch_wait_seconds",
    "Time a decoded request waited for its shared model call to start.",
    ["model"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
FEEDBACK = Counter(
    "driftloop_feedback_received_total",
    "Feedback items accepted by the feedback API.",
    ["model"],
)
STORE_WRITTEN = Counter("driftloop_store_written_total", "Prediction rows written to the store.")
STORE_DROPPED = Counter(
    "driftloop_store_dropped_total",
    "Prediction rows dropped because the store queue was full or the write failed.",
)
STORE_QUEUE_DEPTH = Gauge(
    "driftloop_store_queue_depth", "Prediction rows waiting for the store flusher."
)
LOGGER_EVENTS = Counter(
    "driftloop_logger_events_total",
    "Payload-logger CloudEvents by outcome (sent, dropped: queue full, failed: retries spent).",
    ["outcome"],
)
LOGGER_QUEUE_DEPTH = Gauge(
    "driftloop_logger_queue_depth", "CloudEvents waiting for the payload-logger sender."
)


# Model label values come only from models this process serves: a name taken from a
# request path (before auth, before routing) is counted as UNKNOWN_MODEL, so random URLs
# cannot grow /metrics.
UNKNOWN_MODEL = "unknown"
_served_models: set[str] = set()


def register_models(names) -> None:  # noqa: ANN001 - any iterable of names
    _served_models.update(str(name) for name in names)


def model_label(name: str) -> str:
    """``name`` when this process serves it ("" stays ""), else ``UNKNOWN_MODEL``."""
    if not name or name in _served_models:
        return name
    return UNKNOWN_MODEL


def set_served_version(model: str, version: str, previous: str | None = None) -> None:
    """Point the version-info gauge at ``version`` (and retire ``previous``)."""
    _served_models.add(model)
    if previous is not None and previous != version:
        try:
            MODEL_VERSION_INFO.remove(model, previous)
        except KeyError:
            pass
    MODEL_VERSION_INFO.labels(model=model, version=version).set(1)


# Pre-create the outcome series so dashboards see zeros rather than gaps.
for _outcome in ("sent", "dropped", "failed"):
    LOGGER_EVENTS.labels(outcome=_outcome)
