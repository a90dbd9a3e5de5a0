"""Windows of paired samples, decoded and tested off the request path.

Intake hands the engine each paired inference as it came (the logged request
body and the per-instance answers, already counted and checked) and returns at
once: :meth:`DriftEngine.submit` only appends to a queue. One worker thread
takes everything queued at a time, decodes the requests with the served
version's codec in as few codec calls as it can (``events.decode_requests``),
cuts full windows of ``window`` samples and runs the featuriser and the
detectors on each window, one window at a time, in this process or, with a
:class:`~driftloop.monitor.detection_process.DetectionProcess`, in a child
process of its own (so featurising never holds the GIL the intake's event loop
needs).

What waits (queued inferences and cut windows) is bounded by
``max_backlog_windows`` windows' worth of samples: at the predictor's rate
detection keeps up and nothing is dropped; if detection falls behind for
longer than the backlog covers, the oldest queued samples are dropped, a
window's worth at a time, and each counted in
``driftloop_monitor_windows_dropped_total`` rather than letting memory grow.

A window some detector flags is evidence; drift is *sustained* -- what
DriftDetected fires on -- once ``alarm_flagged`` of the last ``alarm_of_last``
windows were flagged (``MonitorConfig``; a calibrated test flags ~p_val of
in-domain windows, 2 of 3 about 3 * p_val squared).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from driftloop.monitor.detection_process import DetectionFailed
from driftloop.monitor.detectors import DetectorResult
from driftloop.monitor.events import (
    InvalidEvent,
    Sample,
    decode_requests,
    join_instances,
    response_outputs,
)
from driftloop.monitor.metrics import MonitorMetrics
from driftloop.monitor.reference import ReferenceBundle

log = logging.getLogger(__name__)

# How long queued inferences short of a window wait for the worker's next decoding round.
DECODE_INTERVAL_S = 0.1
# How often a stream of undecodable requests is logged (each one is counted).
INVALID_LOG_INTERVAL_S = 60.0

# (generation, bundle, joined model input, answers) -> one result per detector
WindowEvaluator = Callable[[int, ReferenceBundle, object, list[dict]], list[DetectorResult]]


def evaluate_here(
    generation: int,  # noqa: ARG001 - the in-process evaluator needs no generation
    bundle: ReferenceBundle,
    model_input: object,
    outputs: list[dict],
) -> list[DetectorResult]:
    """Featurise one window and run the detectors on it, in this process."""
    return bundle.detectors.run(bundle.featurizer.transform(model_input, outputs))


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


@dataclass(frozen=True)
class _Inference:
    """A paired inference waiting to be decoded: its logged request and response bodies."""

    request: dict
    response: dict
    count: int  # instances, as both bodies declare


class DriftEngine:
    def __init__(
        self,
        model_name: str,
        metrics: MonitorMetrics,
        *,
        window: int,
        alarm_flagged: int = 2,
        alarm_of_last: int = 3,
        max_backlog_windows: int = 16,
        evaluator: WindowEvaluator | None = None,
    ) -> None:
        if window < 2:
            raise ValueError("window must be at least 2")
        if not 1 <= alarm_flagged <= alarm_of_last:
            raise ValueError("need 1 <= alarm_flagged <= alarm_of_last")
        if max_backlog_windows < 1:
            raise ValueError("max_backlog_windows must be at least 1")
        self.model_name = model_name
        self.metrics = metrics
        self.window = window
        self.alarm_flagged = alarm_flagged
        self.max_backlog = max_backlog_windows * window  # samples
        self._evaluator = evaluator or evaluate_here
        # whether each of the last alarm_of_last windows of the watched version was flagged
        self._recent: deque[bool] = deque(maxlen=alarm_of_last)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # work arrived, or the worker went idle
        self._inferences: deque[tuple[_Inference, int]] = deque()  # (inference, samples)
        self._queued_samples = 0  # in _inferences
        self._windows: deque[_Job] = deque()
        self._dropped_samples = 0  # dropped since the last window counted as dropped
        self._buffer: list[Sample] = []
        self._version: str | None = None
        self._bundle: ReferenceBundle | None = None
        self._generation = 0
        self._working = False
        self._closing = False
        self._last_invalid_log = -INVALID_LOG_INTERVAL_S
        self._invalid_unlogged = 0
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

    @property
    def backlog(self) -> int:
        """Samples waiting: queued inferences, cut windows and the partly filled one."""
        with self._lock:
            return self._queued_samples + len(self._windows) * self.window + len(self._buffer)

    @property
    def ready(self) -> bool:
        """Whether windows of the watched version can be tested now (its bundle is loaded
        where detection runs: a child process may still be importing its libraries)."""
        generation, bundle = self._generation, self._bundle
        if bundle is None:
            return False
        ready_for = getattr(self._evaluator, "ready_for", None)
        return ready_for is None or ready_for(generation)

    def set_reference(self, version: str | None, bundle: ReferenceBundle | None) -> None:
        """Watch ``version`` with ``bundle``; what is queued for the old one is discarded."""
        with self._changed:
            old = self._version
            self._version, self._bundle = version, bundle
            self._generation += 1
            self._buffer = []
            self._inferences.clear()
            self._queued_samples = 0
            self._windows.clear()
            self._dropped_samples = 0
            self._recent.clear()  # a new reference starts gathering evidence afresh
            self._changed.notify_all()
        if old is not None and old != version:
            self.metrics.forget_version(self.model_name, old)
        if version is not None:
            self.metrics.reference_loaded.labels(model=self.model_name, version=version).set(
                1 if bundle is not None else 0
            )

    # --- intake -------------------------------------------------------------
    def submit(self, request: dict, response: dict, count: int) -> None:
        """Queue one paired inference of ``count`` instances (both bodies declare as many)."""
        if self._bundle is None or count <= 0:
            return  # no reference: events are counted by the caller, nothing to test
        with self._changed:
            self._inferences.append((_Inference(request, response, count), count))
            self._queued_samples += count
            self._shed()
            if len(self._inferences) == 1 or self._queued_samples >= self.window:
                # the first starts the worker's decoding round; a window's worth ends it.
                # Between the two intake does not hand the GIL to the worker per inference.
                self._changed.notify()

    def add(self, samples: Sequence[Sample]) -> int:
        """Buffer decoded samples for the next window; returns how many were rejected."""
        with self._changed:
            bundle = self._bundle
            if bundle is None:
                return 0
            rejected = self._buffer_samples(samples, bundle)
            self._shed()
            self._changed.notify()
        return rejected

    def _buffer_samples(self, samples: Sequence[Sample], bundle: ReferenceBundle) -> int:
        """Under the lock: keep the samples the featuriser knows, cut full windows."""
        known = [s for s in samples if bundle.featurizer.knows(s.output)]
        self._buffer.extend(known)
        while len(self._buffer) >= self.window:
            self._windows.append(
                _Job(self._generation, self._version or "", bundle, self._buffer[: self.window])
            )
            self._buffer = self._buffer[self.window :]
        return len(samples) - len(known)

    def _shed(self) -> None:
        """Under the lock: drop the oldest queued work past the backlog, counted in windows."""
        while self._queued_samples + len(self._windows) * self.window > self.max_backlog:
            if self._windows:
                self._windows.popleft()
                self.metrics.windows_dropped.labels(model=self.model_name).inc()
                continue
            _, samples = self._inferences.popleft()
            self._queued_samples -= samples
            self._dropped_samples += samples
            while self._dropped_samples >= self.window:
                self._dropped_samples -= self.window
                self.metrics.windows_dropped.labels(model=self.model_name).inc()

    # --- worker -------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            with self._lock:
                self._closing = False
            self._thread = threading.Thread(target=self._work, name="drift-detection", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Test what is queued (for up to ``timeout`` seconds), then stop the worker."""
        if self._thread is not None:
            with self._changed:
                self._closing = True
                self._changed.notify_all()
            stop_waiting = getattr(self._evaluator, "stop_waiting", None)
            if stop_waiting is not None and not self.ready:
                stop_waiting()  # still loading the reference: nothing could be tested anyway
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "%s: %d queued samples not tested before the stop",
                    self.model_name,
                    self.backlog,
                )
                with self._changed:
                    self._inferences.clear()
                    self._queued_samples = 0
                    self._windows.clear()
            self._thread = None
        close = getattr(self._evaluator, "close", None)
        if close is not None:
            close()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until everything queued was decoded and every full window tested."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._working or self._inferences or self._windows:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def _work(self) -> None:
        prepared: int | None = None  # the generation whose bundle the evaluator was given
        while True:
            with self._changed:
                round_due: float | None = None  # when queued inferences are decoded anyway
                while not (
                    self._windows
                    or self._closing
                    or (self._bundle is not None and self._generation != prepared)
                    or self._queued_samples >= self.window
                ):
                    if not self._inferences:
                        round_due = None
                        self._changed.wait()
                        continue
                    now = time.monotonic()
                    if round_due is None:
                        round_due = now + DECODE_INTERVAL_S
                    if now >= round_due:
                        break
                    self._changed.wait(round_due - now)
                if self._closing and not (self._inferences or self._windows):
                    return  # everything queued was tested
                inferences = [inference for inference, _ in self._inferences]
                self._inferences.clear()
                self._queued_samples = 0
                generation, bundle = self._generation, self._bundle
                self._working = True
            try:
                if bundle is not None and generation != prepared:
                    prepared = generation
                    self._prepare(generation, bundle)
                if inferences and bundle is not None:
                    self._decode(inferences, generation, bundle)
                with self._lock:
                    job = self._windows.popleft() if self._windows else None
                if job is not None:
                    self._evaluate(job)
            except DetectionFailed as exc:  # the child process said why, or exited
                if not self._closing:
                    log.error("%s: drift detection failed on a window: %s", self.model_name, exc)
            except Exception:  # a bad window must not stop the monitor
                log.exception("%s: drift detection failed on a window", self.model_name)
            finally:
                with self._changed:
                    self._working = False
                    self._changed.notify_all()

    def _prepare(self, generation: int, bundle: ReferenceBundle) -> None:
        """Hand a new reference to an evaluator that keeps it elsewhere (a child process)."""
        prepare = getattr(self._evaluator, "prepare", None)
        if prepare is not None:
            prepare(generation, bundle)

    def _decode(self, inferences: list[_Inference], generation: int, bundle) -> None:  # noqa: ANN001
        """Decode queued requests in batches, pair each instance with its answer, buffer."""
        decoded = decode_requests([i.request for i in inferences], bundle.codec)
        samples: list[Sample] = []
        invalid: list[str] = []
        for inference, pieces in zip(inferences, decoded, strict=True):
            try:
                if isinstance(pieces, InvalidEvent):
                    raise pieces
                outputs = response_outputs(inference.response)
                if not len(pieces) == len(outputs) == inference.count:
                    raise InvalidEvent(
                        f"request holds {len(pieces)} instances, response {len(outputs)} "
                        f"predictions; both declared {inference.count}"
                    )
            except InvalidEvent as exc:
                invalid.append(str(exc))
                continue
            samples.extend(
                Sample(model_input=piece, output=output)
                for piece, output in zip(pieces, outputs, strict=True)
            )
        with self._changed:
            if generation != self._generation:
                return  # the champion moved while these were decoded
            rejected = self._buffer_samples(samples, bundle)
            self._shed()
            version = self._version
        self.metrics.event(self.model_name, version, "invalid", rejected + len(invalid))
        if invalid:
            self._log_invalid(invalid)

    def _log_invalid(self, problems: list[str]) -> None:
        now = time.monotonic()
        self._invalid_unlogged += len(problems)
        if now - self._last_invalid_log < INVALID_LOG_INTERVAL_S:
            return
        log.warning(
            "%s: %d logged requests could not be decoded by the served version's codec "
            "(counted as invalid events); the latest: %s",
            self.model_name,
            self._invalid_unlogged,
            problems[-1],
        )
        self._last_invalid_log, self._invalid_unlogged = now, 0

    def _evaluate(self, job: _Job) -> WindowReport | None:
        started = time.perf_counter()
        model_input = join_instances([s.model_input for s in job.samples])
        outputs = [s.output for s in job.samples]
        results = self._evaluator(job.generation, job.bundle, model_input, outputs)
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
