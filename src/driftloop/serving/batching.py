"""Adaptive batching: concurrent requests to one model share one model call.

KServe's batcher semantics, per model: a batch closes when it holds
``max_batch_size`` instances or when its first request has waited
``max_latency_ms``. KServe implements them in its agent sidecar (the
InferenceService's ``spec.predictor.batcher``), which merges v1 bodies into one
request before the predictor sees them; here they run inside the predictor,
after each request is decoded by its version's codec, so v1, v2 and gRPC are
batched alike and every request keeps its own request id, response, prediction
record and payload event: only the model call is shared.

Adaptive: one model call runs at a time, off the event loop (the loop keeps
reading and decoding requests meanwhile). Requests that arrive while it runs
wait for it; when it ends they go together at once -- they have already waited
one model call, so under load a batch grows to the backlog without any timer.
Only a request that finds the model idle waits for company, and only until the
event loop has no more ready work (every request already read has been decoded
and joined the batch) or ``max_latency_ms``, whichever is first: a lone client
pays a loop turn, not the whole latency budget.

The codec joins the requests' rows (``Codec.join``), the model is called once,
and the codec cuts the answer back per request (``Codec.split``). A model that
refuses the joined rows (any exception) gets each request on its own, so only
the request at fault fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from driftloop.blueprints.codec import Answer, Batch, Codec
from driftloop.serving import metrics

log = logging.getLogger(__name__)

# A request that finds the model idle waits while new requests keep joining during
# consecutive loop turns; this many turns without a newcomer close the batch.
QUIET_TURNS = 2


@dataclass(frozen=True)
class BatchPolicy:
    """``max_batch_size`` instances per model call (1: no batching); ``max_latency_ms``
    the longest a request waits for others before its batch runs."""

    max_batch_size: int
    max_latency_ms: float

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.max_latency_ms <= 0:
            raise ValueError(f"max_latency_ms must be above 0, got {self.max_latency_ms}")

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1


@dataclass(eq=False)
class _Waiting:
    codec: Codec
    batch: Batch
    future: asyncio.Future
    since: float = field(default_factory=time.perf_counter)


Outcome = Answer | BaseException


def run_together(codec: Codec, batches: list[Batch]) -> list[Outcome]:
    """One model call for ``batches`` (one per request) of one codec: each request's answer,
    or the exception its rows alone raise when the joined call fails."""
    if len(batches) == 1:
        try:
            return [codec.predict(batches[0])]
        except Exception as exc:  # noqa: BLE001 - handed to the request's own await
            return [exc]
    try:
        answer = codec.predict(codec.join(batches))
        return list(codec.split(answer, [len(batch) for batch in batches]))
    except Exception as exc:  # noqa: BLE001 - one request's rows may be at fault
        log.info("a batch of %d requests failed (%s); answering each alone", len(batches), exc)
    outcomes: list[Outcome] = []
    for batch in batches:
        try:
            outcomes.append(codec.predict(batch))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(exc)
    return outcomes


class MicroBatcher:
    """Gathers concurrent ``predict`` calls on one event loop into shared model calls."""

    def __init__(self, name: str, policy: BatchPolicy) -> None:
        self.name = name
        self.policy = policy
        self._waiting: list[_Waiting] = []
        self._rows = 0
        self._busy = False
        self._arrivals = 0  # requests that joined since the batch's wait began
        self._quiet_turns = 0
        self._waiting_since: float | None = None
        self._turn: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        # the model's series, looked up once: labels() per request is a locked dict lookup
        self._wait_seconds = metrics.BATCH_WAIT_SECONDS.labels(model=name)
        self._batch_size = metrics.BATCH_SIZE.labels(model=name)

    async def predict(self, codec: Codec, batch: Batch) -> Answer:
        """``codec.predict(batch)``, answered from a model call shared with other requests."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first call, or a new event loop (tests, a new worker)
            self._rebind(loop)
        future = loop.create_future()
        self._waiting.append(_Waiting(codec, batch, future))
        self._rows += len(batch)
        self._arrivals += 1
        if not self._busy:
            if self._rows >= self.policy.max_batch_size:
                self._dispatch()
            elif self._turn is None:
                self._waiting_since = time.perf_counter()
                self._quiet_turns = 0
                self._arrivals = 0
                self._turn = loop.call_soon(self._watch)
        outcome = await future
        return outcome

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # --- on the event loop -------------------------------------------------------------
    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        for waiting in self._waiting:  # a dead loop's requests cannot be answered any more
            if not waiting.future.done():
                waiting.future.cancel()
        self._waiting, self._rows, self._busy, self._turn = [], 0, False, None
        self._loop = loop

    def _watch(self) -> None:
        """Once per loop turn while the model is idle and requests wait: go when quiet."""
        self._turn = None
        if self._busy or not self._waiting:
            return
        waited_ms = (time.perf_counter() - (self._waiting_since or 0.0)) * 1000.0
        if self._arrivals:
            self._arrivals, self._quiet_turns = 0, 0
        else:
            self._quiet_turns += 1
        if (
            self._quiet_turns >= QUIET_TURNS
            or waited_ms >= self.policy.max_latency_ms
            or self._rows >= self.policy.max_batch_size
        ):
            self._dispatch()
        else:
            self._turn = self._loop.call_soon(self._watch)

    def _take(self) -> list[_Waiting]:
        """The oldest requests up to ``max_batch_size`` instances (at least one request)."""
        taken, rows = [], 0
        while self._waiting:
            waiting = self._waiting[0]
            if waiting.future.done():  # its caller went away
                self._waiting.pop(0)
                self._rows -= len(waiting.batch)
                continue
            if taken and rows + len(waiting.batch) > self.policy.max_batch_size:
                break
            taken.append(self._waiting.pop(0))
            self._rows -= len(waiting.batch)
            rows += len(waiting.batch)
        return taken

    def _dispatch(self) -> None:
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        taken = self._take()
        if not taken:
            return
        self._busy = True
        started = time.perf_counter()
        for waiting in taken:
            self._wait_seconds.observe(started - waiting.since)
        self._batch_size.observe(sum(len(w.batch) for w in taken))
        job = self._loop.run_in_executor(self._model_thread(), _run, taken)
        job.add_done_callback(lambda done: self._finished(taken, done))

    def _finished(self, taken: list[_Waiting], done: asyncio.Future) -> None:
        self._busy = False
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        outcomes = [error] * len(taken) if error is not None else done.result()
        for waiting, outcome in zip(taken, outcomes, strict=True):
            if waiting.future.done():
                continue
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)
        if self._waiting:  # they waited a whole model call: no more waiting
            self._dispatch()

    def _model_thread(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"driftloop-model-{self.name}"
                )
            return self._executor


def _run(taken: list[_Waiting]) -> list[Outcome]:
    """In the model thread: one call per codec (a reload mid-batch splits it by version)."""
    by_codec: dict[int, list[int]] = {}
    for index, waiting in enumerate(taken):
        by_codec.setdefault(id(waiting.codec), []).append(index)
    outcomes: list[Outcome | None] = [None] * len(taken)
    for indexes in by_codec.values():
        codec = taken[indexes[0]].codec
        results = run_together(codec, [taken[i].batch for i in indexes])
        for index, result in zip(indexes, results, strict=True):
            outcomes[index] = result
    return outcomes  # type: ignore[return-value]
