"""Pair request and response events on ``ce-id``, in either arrival order.

The logger sends the two halves of one inference independently, so either can
arrive first (or alone, if the other is lost). Unpaired halves wait in a
bounded map and expire after a TTL; what falls out is counted, never kept
forever.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from driftloop.monitor.events import InferenceEvent


@dataclass(frozen=True)
class Pair:
    event_id: str
    model: str | None
    request: dict
    response: dict


@dataclass
class PairingOutcome:
    pair: Pair | None = None
    duplicate: bool = False
    dropped: int = 0  # halves that expired or were evicted while handling this event


class EventPairer:
    def __init__(
        self,
        *,
        ttl_s: float = 60.0,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0 or max_pending <= 0:
            raise ValueError("ttl_s and max_pending must be positive")
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        self._clock = clock
        self._pending: OrderedDict[str, tuple[float, InferenceEvent]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, event: InferenceEvent) -> PairingOutcome:
        now = self._clock()
        with self._lock:
            outcome = PairingOutcome(dropped=self._expire(now))
            waiting = self._pending.get(event.event_id)
            if waiting is None:
                self._pending[event.event_id] = (now, event)
                while len(self._pending) > self.max_pending:
                    self._pending.popitem(last=False)
                    outcome.dropped += 1
                return outcome
            _, other = waiting
            if other.kind == event.kind:
                # a retried delivery of the same half: keep the first one
                outcome.duplicate = True
                return outcome
            del self._pending[event.event_id]
        request, response = (other, event) if other.kind == "request" else (event, other)
        outcome.pair = Pair(
            event_id=event.event_id,
            model=request.model or response.model,
            request=request.body,
            response=response.body,
        )
        return outcome

    def expire(self) -> int:
        """Drop halves older than the TTL; returns how many were dropped."""
        with self._lock:
            return self._expire(self._clock())

    def _expire(self, now: float) -> int:
        dropped = 0
        deadline = now - self.ttl_s
        # insertion order is arrival order, so the oldest are at the front
        while self._pending:
            event_id, (arrived, _) = next(iter(self._pending.items()))
            if arrived > deadline:
                break
            del self._pending[event_id]
            dropped += 1
        return dropped
