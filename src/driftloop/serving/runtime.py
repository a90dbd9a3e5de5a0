"""Per-process serving services: prediction store writer, payload logger, reload pollers.

``DRIFTLOOP_PREDICTION_STORE=off`` runs without the store (no database opened,
no rows written; the feedback routes answer 503 naming the setting), and no
``DRIFTLOOP_LOGGER_URL`` runs without the payload logger.

KServe runs the REST app in one or more processes (``--workers``) and gRPC in
the parent; each process that answers requests gets its own runtime, started
once (by the server before it serves, or by the app's startup hook in a worker)
and closed on shutdown, when it drains the store queue so that no accepted
prediction is lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from driftloop.serving.payload_logger import PayloadLogger
from driftloop.settings import Settings
from driftloop.store import PredictionRecord, PredictionStore
from driftloop.store.writer import StoreWriter

if TYPE_CHECKING:
    from driftloop.serving.model import BlueprintModel

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 3600.0

_runtimes: dict[int, ServingRuntime] = {}
_runtimes_lock = threading.Lock()


class Periodic:
    """Calls ``action`` every ``interval_s`` on a daemon thread until stopped."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        action: Callable[[], Any],
        warm_up: Callable[[], Any] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.action = action
        self.warm_up = warm_up
        self._stop = threading.Event()
        self._last_warned = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        if self.warm_up is not None:
            try:
                self.warm_up()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s warm-up failed: %s", self._thread.name, exc)
        failing_since: float | None = None
        while not self._stop.wait(self.interval_s):
            try:
                self.action()
            except Exception as exc:  # noqa: BLE001 - keep polling after a bad round
                # an outage fails every round: say so once, then once a minute
                now = time.monotonic()
                if failing_since is None or now - self._last_warned >= 60.0:
                    self._last_warned = now
                    log.warning("%s failed: %s", self._thread.name, exc)
                else:
                    log.debug("%s failed: %s", self._thread.name, exc)
                failing_since = failing_since if failing_since is not None else now
                continue
            if failing_since is not None:
                log.warning(
                    "%s works again after %.1fs",
                    self._thread.name,
                    time.monotonic() - failing_since,
                )
                failing_since = None


class ServingRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: PredictionStore | None = None
        self.writer: StoreWriter | None = None
        self.loggers: dict[str, PayloadLogger] = {}
        self._periodic: list[Periodic] = []
        self._watched: set[str] = set()
        self.models: dict[str, BlueprintModel] = {}
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def start(self, models: Iterable[BlueprintModel] = ()) -> ServingRuntime:
        with self._lock:
            if not self._started:
                self._started = True
                if self.settings.prediction_store:
                    self._open_store()
                else:
                    log.warning(
                        "DRIFTLOOP_PREDICTION_STORE is off: predictions are not stored and "
                        "feedback is refused"
                    )
            for model in models:
                self._watch(model)
        return self

    def _open_store(self) -> None:
        self.store = PredictionStore(self.settings.resolved_store_url)
        self._apply_retention()
        self.writer = StoreWriter(self.store, queue_size=self.settings.store_queue_size).start()
        self._periodic.append(
            Periodic("driftloop-retention", RETENTION_INTERVAL_S, self._apply_retention).start()
        )

    def _watch(self, model: BlueprintModel) -> None:
        if model.name in self._watched:
            return
        self._watched.add(model.name)
        self.models[model.name] = model
        if self.settings.logger_url:
            self.loggers[model.name] = PayloadLogger(
                self.settings.logger_url,
                model_name=model.name,
                namespace=self.settings.namespace,
                queue_size=self.settings.logger_queue_size,
                max_retries=self.settings.logger_max_retries,
                batch_max=self.settings.logger_batch_max,
                batch_wait_s=self.settings.logger_batch_wait_ms / 1000.0,
            ).start()
        if model.watches_alias and self.settings.reload_interval_s > 0:
            # A real load now, while this worker does not accept connections yet: the
            # first MLflow load in a process pays seconds of imports and checks that
            # a reload should not, and the worker starts on the alias's current version.
            try:
                model.reload(force=True)
            except Exception as exc:  # noqa: BLE001 - keeps the pickled version; poller retries
                log.warning("initial reload of %s failed: %s", model.name, exc)
            self._periodic.append(
                Periodic(
                    f"driftloop-reload-{model.name}",
                    self.settings.reload_interval_s,
                    model.reload,
                ).start()
            )

    def _apply_retention(self) -> None:
        if self.store is not None and self.settings.retention_days > 0:
            deleted = self.store.delete_older_than(self.settings.retention_days)
            if deleted:
                log.info(
                    "retention: deleted %d predictions older than %d days",
                    deleted,
                    self.settings.retention_days,
                )

    def record(self, record: PredictionRecord, request_body: Any, response_body: Any) -> None:
        """Hand one answered prediction to the store and the payload logger; never blocks."""
        if self.writer is not None:
            self.writer.submit(self._with_observation_keys(record))
        payload_logger = self.loggers.get(record.model_name)
        if payload_logger is not None:
            payload_logger.log(record.request_id, request_body, response_body)

    def _with_observation_keys(self, record: PredictionRecord) -> PredictionRecord:
        """``record`` with what observation resolves each instance, where its blueprint's
        feedback names one (a forecast's series and target day); unchanged otherwise."""
        if self.models.get(record.model_name) is None:  # not served here: nothing to ask
            return record
        try:
            feedback = self.blueprint_for(record.model_name, str(record.model_version)).feedback
        except Exception as exc:  # noqa: BLE001 - an unknown version: by request id only
            log.warning("no observation keys for %s: %s", record.request_id, exc)
            return record
        keys = [feedback.observation_key(summary) for summary in record.inputs]
        if not any(keys):
            return record
        return replace(record, observation_keys=[None if k is None else tuple(k) for k in keys])

    def blueprint_for(self, model_name: str, version: str):  # noqa: ANN201 - a Blueprint
        """The blueprint of a version this process answered with: the served one, else
        the registry's tag (a prediction made before a reload)."""
        model = self.models.get(model_name)
        served = model.served if model is not None else None
        if served is not None and served.version == version:
            return served.blueprint
        return _registry_blueprint(model_name, version, self.settings.resolved_tracking_uri)

    def find_prediction(self, request_id: str, wait_s: float = 1.0) -> PredictionRecord | None:
        """Look a prediction up, waiting for rows that may still be queued.

        Feedback can arrive before the flusher wrote its prediction: flush this
        process's queue, and give other workers' flushers up to ``wait_s``.
        """
        if self.store is None:
            return None
        found = self.store.get_prediction(request_id)
        if found is not None:
            return found
        if self.writer is not None:
            self.writer.flush()
        deadline = time.monotonic() + wait_s
        while True:
            found = self.store.get_prediction(request_id)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def find_predictions(
        self, request_ids: list[str], wait_s: float = 0.5
    ) -> dict[str, PredictionRecord]:
        """The predictions of ``request_ids`` that exist, by id: one query for all of them,
        then (for ids not found) one flush of this process's queue and one shared wait
        of at most ``wait_s`` for other workers' flushers -- not a wait per id."""
        if self.store is None:
            return {}
        found = self.store.get_predictions(request_ids)
        missing = [request_id for request_id in request_ids if request_id not in found]
        if not missing:
            return found
        if self.writer is not None:
            self.writer.flush()
        deadline = time.monotonic() + wait_s
        while missing:
            found.update(self.store.get_predictions(missing))
            missing = [request_id for request_id in missing if request_id not in found]
            if not missing or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return found

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for periodic in self._periodic:
            periodic.stop()
        for payload_logger in self.loggers.values():
            payload_logger.close()
        if self.writer is not None:
            self.writer.close()
        if self.store is not None:
            self.store.close()


@lru_cache(maxsize=64)
def _registry_blueprint(model_name: str, version: str, tracking_uri: str | None):  # noqa: ANN202
    from driftloop.serving.loader import blueprint_of

    return blueprint_of(f"models:/{model_name}/{version}", tracking_uri)


def install(settings: Settings) -> ServingRuntime:
    """The runtime of this process (created on first call)."""
    with _runtimes_lock:
        serving = _runtimes.get(os.getpid())
        if serving is None or serving._closed:
            serving = _runtimes[os.getpid()] = ServingRuntime(settings)
        return serving


_server_pid: int | None = None


def mark_server_process() -> None:
    """Mark the process running ``ModelServer.start``: it closes its runtime after all servers."""
    global _server_pid
    _server_pid = os.getpid()


def close_unless_server_process() -> None:
    """Shutdown hook of a REST app: close here unless gRPC in this process still needs it."""
    if os.getpid() != _server_pid:
        close_current()


def current() -> ServingRuntime | None:
    return _runtimes.get(os.getpid())


def close_current() -> None:
    with _runtimes_lock:
        serving = _runtimes.pop(os.getpid(), None)
    if serving is not None:
        serving.close()
