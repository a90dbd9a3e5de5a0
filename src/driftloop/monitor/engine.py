"""Windows of paired samples, tested off the request path.

Intake appends samples and returns at once; every ``window`` samples the
full window is queued for a single background thread that featurises it and
runs the detectors. If detection falls behind, the oldest queued window is
dropped (and counted) rather than letting memory grow.

A window some detector flags is evidence; drift is *sustained* -- what
DriftDetected fires on -- once ``alarm_flagged`` of the last ``alarm_of_last``
windows were flagged (``MonitorConfig``; a calibrated test flags ~p_val of
in-domain windows, 2 of 3 about 3 * p_val squared).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from driftloop.monitor.detectors import DetectorResult
from driftloop.monitor.events import Sample, join_instances
from driftloop.monitor.metrics import MonitorMetrics
from driftloop.monitor.reference import ReferenceBundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowReport:
    version: str
    size: int
    results: list[DetectorResult]
    seconds: float

    @property
    def drift(self) -> bool:
        return any(r.detected for r in self.results)


@dataclass(frozen=True)
class _Job:
    generation: int
    version: str
    bundle: ReferenceBundle
    samples: list[Sample]


class DriftEngine:
    def __init__(
        self,
        model_name: str,
        metrics: MonitorMetrics,
        *,
        window: int,
        alarm_flagged: int = 2,
        alarm_of_last: int = 3,
        max_queued_windows: int = 4,
    ) -> None:
        if window < 2:
            raise ValueError("window must be at least 2")
        if not 1 <= alarm_flagged <= alarm_of_last:
            raise ValueError("need 1 <= alarm_flagged <= alarm_of_last")
        self.model_name = model_name
        self.metrics = metrics
        self.window = window
        self.alarm_flagged = alarm_flagged
        # whether each of the last alarm_of_last windows of the watched version was flagged
        self._recent: deque[bool] = deque(maxlen=alarm_of_last)
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queued_windows)
        self._lock = threading.Lock()
        self._buffer: list[Sample] = []
        self._version: str | None = None
        self._bundle: ReferenceBundle | None = None
        self._generation = 0
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self.reports: list[WindowReport] = []  # last few, for /status and tests
        self._thread: threading.Thread | None = None
        metrics.window_size.labels(model=model_name).set(window)

    # --- reference ----------------------------------------------------------
    @property
    def version(self) -> str | None:
        return self._version

    @property
    def bundle(self) -> ReferenceBundle | None:
        return self._bundle

    def set_reference(self, version: str | None, bundle: ReferenceBundle | None) -> None:
        """Watch ``version`` with ``bundle``; a partly filled window of the old one is discarded."""
        with self._lock:
            old = self._version
            self._version, self._bundle = version, bundle
            self._generation += 1
            self._buffer = []
            self._recent.clear()  # a new reference starts gathering evidence afresh
        if old is not None and old != version:
            self.metrics.forget_version(self.model_name, old)
        if version is not None:
            self.metrics.reference_loaded.labels(model=self.model_name, version=version).set(
                1 if bundle is not None else 0
            )

    # --- intake -------------------------------------------------------------
    def add(self, samples: Sequence[Sample]) -> int:
        """Buffer samples for the next window; returns how many were rejected."""
        with self._lock:
            bundle = self._bundle
            if bundle is None:
                return 0  # no reference: events are counted by the caller, nothing to test
            known = [s for s in samples if bundle.featurizer.knows(s.output)]
            self._buffer.extend(known)
            ready = []
            while len(self._buffer) >= self.window:
                ready.append(self._buffer[: self.window])
                self._buffer = self._buffer[self.window :]
            jobs = [_Job(self._generation, self._version or "", bundle, w) for w in ready]
            self._busy += len(jobs)
        for job in jobs:
            self._enqueue(job)
        return len(samples) - len(known)

    def _enqueue(self, job: _Job) -> None:
        while True:
            try:
                self._jobs.put_nowait(job)
                return
            except queue.Full:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    continue
                self.metrics.windows_dropped.labels(model=self.model_name).inc()
                self._done()

    # --- worker -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="drift-detection", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            while True:
                try:
                    self._jobs.put(None, timeout=0.1)
                    break
                except queue.Full:
                    try:
                        self._jobs.get_nowait()
                        self._done()
                    except queue.Empty:
                        pass
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued window was tested (tests and shutdown use this)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _done(self) -> None:
        with self._idle:
            self._busy = max(0, self._busy - 1)
            self._idle.notify_all()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._evaluate(job)
            except Exception:  # a bad window must not stop the monitor
                log.exception("%s: drift detection failed on a window", self.model_name)
            finally:
                self._done()

    def _evaluate(self, job: _Job) -> WindowReport | None:
        started = time.perf_counter()
        model_input = join_instances([s.model_input for s in job.samples])
        outputs = [s.output for s in job.samples]
        features = job.bundle.featurizer.transform(model_input, outputs)
        results = job.bundle.detectors.run(features)
        elapsed = time.perf_counter() - started
        if job.generation != self._generation:
            return None  # the champion moved while this window was being tested
        report = WindowReport(job.version, len(job.samples), results, elapsed)
        self._publish(report)
        return report

    def _publish(self, report: WindowReport) -> None:
        m, model = self.metrics, self.model_name
        for result in report.results:
            labels = dict(
                model=model, version=report.version, detector=result.name, features=result.features
            )
            m.drift_score.labels(**labels).set(result.score)
            m.drift_p_value.labels(**labels).set(result.p_value)
            m.drift_detected.labels(**labels).set(1 if result.detected else 0)
        self._recent.append(report.drift)
        flagged = sum(self._recent)
        version_labels = dict(model=model, version=report.version)
        m.drift_flagged_windows.labels(**version_labels).set(flagged)
        sustained = flagged >= self.alarm_flagged
        m.drift_sustained.labels(**version_labels).set(1 if sustained else 0)
        m.windows.labels(model=model, version=report.version).inc()
        m.detection_seconds.labels(model=model).observe(report.seconds)
        self.reports = (self.reports + [report])[-20:]
        log.info(
            "%s v%s: window of %d, drift=%s (%d of the last %d flagged, sustained=%s; %s) in %.2fs",
            model,
            report.version,
            report.size,
            report.drift,
            flagged,
            len(self._recent),
            sustained,
            ", ".join(f"{r.name}={r.p_value:.3g}" for r in report.results),
            report.seconds,
        )
