"""The monitor's logic, independent of HTTP: intake, pairing, windows, polling."""

from __future__ import annotations

import gc
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from driftloop.monitor.champion import (
    ChampionSource,
    FeedbackSource,
    WatchedVersion,
    live_score,
)
from driftloop.monitor.config import load_config
from driftloop.monitor.detection_process import DetectionProcess
from driftloop.monitor.engine import DriftEngine
from driftloop.monitor.events import (
    InferenceEvent,
    InvalidEvent,
    declared_count,
    parse_event,
)
from driftloop.monitor.metrics import MonitorMetrics
from driftloop.monitor.pairing import EventPairer
from driftloop.monitor.reference import ReferenceBundle, load_reference
from driftloop.monitor.residuals import ResidualWatch
from driftloop.settings import Settings

log = logging.getLogger(__name__)

# How long a stop waits for a poll or a window in progress. A poll can hang on an
# unreachable registry or store for minutes (client retries); it only reads, so
# its thread is abandoned rather than holding up the exit past the supervisor's
# SIGKILL (15 s for `driftloop down`, 30 s for a kubelet).
POLLER_STOP_WAIT_S = 2.0
ENGINE_STOP_WAIT_S = 5.0


@dataclass(frozen=True)
class IntakeResult:
    status: int
    detail: dict


class MonitorService:
    def __init__(
        self,
        model_name: str,
        settings: Settings,
        *,
        alias: str = "champion",
        champion_source: ChampionSource | None = None,
        feedback_source: FeedbackSource | None = None,
        watch: bool = True,
        detection_process: bool = False,
    ) -> None:
        """``detection_process``: featurise and test windows in a child process
        (:mod:`driftloop.monitor.detection_process`), as ``driftloop monitor`` does, so
        detection never holds the GIL the intake needs; off, in a thread of this process."""
        self.model_name = model_name
        self.settings = settings
        self.alias = alias
        self.metrics = MonitorMetrics()
        # (champion version, its residual watch): made on the first judged residual
        self._residuals: tuple[str, ResidualWatch] | None = None
        config = load_config(settings=settings)
        self._residual_p_val = config.p_val  # the family-wise false-alarm rate per window
        self.engine = DriftEngine(
            model_name,
            self.metrics,
            window=config.window_size(settings),
            alarm_flagged=config.alarm_flagged,
            alarm_of_last=config.alarm_of_last,
            evaluator=DetectionProcess(f"{model_name} drift detection")
            if detection_process
            else None,
        )
        self.pairer = EventPairer(
            ttl_s=settings.monitor_pending_ttl_s, max_pending=settings.monitor_max_pending
        )
        self._watch = watch
        self._champion_source = champion_source
        self._feedback_source = feedback_source
        self.watched: WatchedVersion | None = None
        self._failed_references: set[str] = set()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        # read when scraped, not set per event: one labels() lookup and a lock per event
        self.metrics.pending.labels(model=model_name).set_function(self.pairer.__len__)

    # --- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self.engine.start()
        if self._watch and self._poller is None:
            self._poller = threading.Thread(
                target=self._poll_loop, name="monitor-poller", daemon=True
            )
            self._poller.start()

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=POLLER_STOP_WAIT_S)
            if self._poller.is_alive():
                log.warning(
                    "%s: a registry/store poll is still running; not waiting for it",
                    self.model_name,
                )
            self._poller = None
        self.engine.close(timeout=ENGINE_STOP_WAIT_S)
        if self._feedback_source is not None:
            self._feedback_source.close()
        log.info(
            "%s: monitor stopped (%d unpaired events dropped)", self.model_name, len(self.pairer)
        )

    # --- intake ---------------------------------------------------------------
    def handle(self, headers: Mapping[str, str], body: bytes) -> IntakeResult:
        try:
            event = parse_event(headers, body)
        except InvalidEvent as exc:
            self.metrics.event(self.model_name, self.engine.version, "invalid")
            return IntakeResult(400, {"detail": f"invalid CloudEvent: {exc}"})
        return self.handle_event(event)

    def handle_event(self, event: InferenceEvent) -> IntakeResult:
        """One parsed event, whether it came alone or inside a batch."""
        version = self.engine.version
        self.metrics.event(self.model_name, version, event.kind)
        outcome = self.pairer.add(event)
        self.metrics.event(self.model_name, version, "unmatched", outcome.dropped)
        if outcome.duplicate:
            return IntakeResult(200, {"accepted": False, "duplicate": True, "id": event.event_id})
        if outcome.pair is None:
            return IntakeResult(202, {"accepted": True, "paired": False, "id": event.event_id})
        try:
            # cheap checks that answer the sender; decoding waits for the engine's worker
            count = declared_count(outcome.pair.request, "request")
            answers = declared_count(outcome.pair.response, "response")
        except InvalidEvent as exc:
            self.metrics.event(self.model_name, version, "invalid")
            return IntakeResult(400, {"detail": f"invalid inference payload: {exc}"})
        if count != answers:
            self.metrics.event(self.model_name, version, "invalid")
            detail = f"request has {count} instances but response has {answers} predictions"
            return IntakeResult(400, {"detail": f"invalid inference payload: {detail}"})
        self.metrics.event(self.model_name, version, "paired")
        self.engine.submit(outcome.pair.request, outcome.pair.response, count)
        return IntakeResult(
            202, {"accepted": True, "paired": True, "id": event.event_id, "samples": count}
        )

    # --- reference and polling --------------------------------------------------
    def use_reference(self, version: str | None, bundle: ReferenceBundle | None) -> None:
        self.engine.set_reference(version, bundle)

    def refresh_champion(self) -> None:
        source = self._champion_source or ChampionSource(self.model_name, self.alias, self.settings)
        self._champion_source = source
        current = source.current()
        previous = self.watched
        if current is None:
            if previous is not None:
                log.warning("%s@%s is gone; watching nothing", self.model_name, self.alias)
                self.watched = None
                self.use_reference(None, None)
            return
        self._publish_champion(current)
        unchanged = (
            previous is not None
            and previous.version == current.version
            and previous.reference_uri == current.reference_uri
        )
        if unchanged and (
            self.engine.bundle is not None
            or current.reference_uri is None
            or current.reference_uri in self._failed_references
        ):
            self.watched = current
            return
        self.watched = current
        self.use_reference(current.version, self._load(current))
        # What is loaded now (the detectors' libraries, the reference) lives as long as the
        # process: frozen, the garbage collector stops walking it on every full collection,
        # which under a stream of events cost intake more than handling the events did.
        gc.freeze()
        self._publish_champion(current)  # forget_version may just have cleared it

    def _publish_champion(self, current: WatchedVersion) -> None:
        self.metrics.set_champion(
            self.model_name,
            current.version,
            test_score=current.test_score,
            greater_is_better=current.greater_is_better,
        )

    def _load(self, current: WatchedVersion) -> ReferenceBundle | None:
        uri = current.reference_uri
        if uri is None:
            log.warning(
                "%s v%s has no drift reference: counting events only",
                self.model_name,
                current.version,
            )
            return None
        if uri in self._failed_references:
            return None
        try:
            bundle = load_reference(uri, tracking_uri=self.settings.resolved_tracking_uri)
        except Exception as exc:  # a broken artifact must not stop intake
            self._failed_references.add(uri)
            log.error(
                "%s v%s: cannot load drift reference %s: %s",
                self.model_name,
                current.version,
                uri,
                exc,
            )
            return None
        log.info("%s v%s: drift reference loaded from %s", self.model_name, current.version, uri)
        return bundle

    def refresh_feedback(self) -> None:
        if self.watched is None:
            return
        source = self._feedback_source or FeedbackSource(self.settings.resolved_store_url)
        self._feedback_source = source
        total, champion = source.stats(self.model_name, self.watched.version, self.watched.since)
        self.metrics.set_feedback(
            self.model_name,
            self.watched.version,
            total=total.count,
            since_champion=champion.count,
            judged=champion.judged,
            accuracy=champion.accuracy,
        )
        watched = self.watched
        pairs = (
            source.pairs(
                self.model_name, watched.version, watched.since, self.settings.live_score_pairs
            )
            if watched.feedback is not None
            else []
        )
        score = live_score(watched.feedback, pairs, min_samples=self.settings.score_min_samples)
        self.watch_residuals(watched, pairs)
        self.metrics.set_live_score(
            self.model_name,
            watched.version,
            value=score.value,
            samples=score.samples,
            metrics=score.metrics,
        )

    def watch_residuals(self, watched: WatchedVersion, pairs) -> None:  # noqa: ANN001
        """Feed the champion's new residuals to its online test (``monitor.residuals``):
        the first ``score_min_samples`` are its reference, then windows of the drift
        window's size; a new champion starts a new watch."""
        if watched.feedback is None:
            return
        residuals = self._residuals
        if residuals is None or residuals[0] != watched.version:
            window = max(10, min(self.settings.monitor_window, 100))
            watch = ResidualWatch(
                reference_size=max(self.settings.score_min_samples, window),
                window=window,
                p_val=self._residual_p_val,
            )
            residuals = self._residuals = (watched.version, watch)
        watch = residuals[1]
        for test in watch.add_pairs(watched.feedback, pairs):
            self.metrics.set_residual_test(
                self.model_name,
                watched.version,
                detected=test.detected,
                p_value=test.p_value,
                windows=watch.windows,
            )
            if test.detected:
                log.info(
                    "%s v%s: residuals larger than its first ones (median %.4g vs %.4g, p=%.3g)",
                    self.model_name,
                    watched.version,
                    test.window_median,
                    test.reference_median,
                    test.p_value,
                )

    def expire_pending(self) -> None:
        dropped = self.pairer.expire()
        self.metrics.event(self.model_name, self.engine.version, "unmatched", dropped)

    def _poll_loop(self) -> None:
        next_feedback = 0.0
        elapsed = 0.0
        tick = min(self.settings.reload_interval_s, self.settings.monitor_feedback_poll_s, 1.0)
        next_champion = 0.0
        while not self._stop.is_set():
            if elapsed >= next_champion:
                self._guarded(self.refresh_champion, "registry poll")
                next_champion = elapsed + self.settings.reload_interval_s
            if elapsed >= next_feedback:
                self._guarded(self.refresh_feedback, "feedback poll")
                next_feedback = elapsed + self.settings.monitor_feedback_poll_s
            self._guarded(self.expire_pending, "expiry")
            self._stop.wait(tick)
            elapsed += tick

    def _guarded(self, action, what: str) -> None:
        try:
            action()
        except Exception as exc:  # the registry or store being down is temporary
            log.warning("%s: %s failed: %s", self.model_name, what, exc)

    def status(self) -> dict:
        watched = self.watched
        return {
            "model": self.model_name,
            "alias": self.alias,
            "version": self.engine.version,
            "reference_loaded": self.engine.bundle is not None,
            "detection_ready": self.engine.ready,
            "backlog": self.engine.backlog,
            "window": self.engine.window,
            "pending": len(self.pairer),
            "test_score": watched.test_score if watched else None,
            "metric": watched.metric if watched else None,
            "last_windows": [
                {
                    "version": r.version,
                    "size": r.size,
                    "drift": r.drift,
                    "seconds": round(r.seconds, 4),
                    "detectors": {
                        d.name: {
                            "detected": d.detected,
                            "p_value": _finite_or_none(d.p_value),
                            "score": _finite_or_none(d.score),
                        }
                        for d in r.results
                    },
                }
                for r in self.engine.reports[-5:]
            ],
        }


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN: online detectors have no p-value
    return value if math.isfinite(value) else None
