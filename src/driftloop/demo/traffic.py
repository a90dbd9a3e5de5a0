"""Live traffic for the demo: v1 predictions over HTTP, and the ground truth for some of them.

Any blueprint's traffic is a list of :class:`Example` (a v1 instance and its
ground truth); the replayer sends one instance per request (feedback is per
request), keeps each answer next to its truth, and scores them with the
model's own live metric, the one ``LiveScoreDrop`` watches.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Example:
    instance: Any  # one v1 instance: a text, a {column: value} row, ...
    truth: Any  # its ground truth: a label, a number, ...
    # where the truth arrives as an observation rather than by request id: its key
    # ({"series": ..., "date": ...}), sent to /v1/feedback/observations with the truth
    observation: dict | None = None


# (outputs, truths) -> the live value of the model's metric
LiveScore = Callable[[Sequence[dict], Sequence[Any]], float]


@dataclass
class TrafficStats:
    requests: int = 0
    predictions: int = 0
    feedback: int = 0
    errors: int = 0
    outputs: list[dict] = field(default_factory=list)
    truths: list[Any] = field(default_factory=list)
    versions: Counter = field(default_factory=Counter)
    last_version: str | None = None
    first_seen: dict[str, float] = field(default_factory=dict)  # version -> time.time()
    live_score: float | None = None  # the model's metric over outputs/truths, when last scored

    def score(self, live_score: LiveScore) -> float | None:
        return live_score(self.outputs, self.truths) if self.outputs else None

    def add(self, other: TrafficStats) -> None:
        self.requests += other.requests
        self.predictions += other.predictions
        self.feedback += other.feedback
        self.errors += other.errors
        self.outputs += other.outputs
        self.truths += other.truths
        self.versions.update(other.versions)


class TrafficReplayer:
    """Sends examples one per request (v1); sends the truth back for a fraction of them."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        feedback_fraction: float = 0.5,
        seed: int = 42,
        timeout_s: float = 15.0,
    ) -> None:
        self.model = model
        self.feedback_fraction = feedback_fraction
        self._random = random.Random(seed)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def __enter__(self) -> TrafficReplayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def send(self, example: Example, stats: TrafficStats) -> None:
        """One request: predict, then feedback if this example is sampled."""
        try:
            response = self._http.post(
                f"/v1/models/{self.model}:predict", json={"instances": [example.instance]}
            )
            response.raise_for_status()
            body = response.json()
            (output,) = body["predictions"]
        except (httpx.HTTPError, ValueError, KeyError):
            stats.errors += 1
            return
        version = str(body.get("model_version"))
        stats.requests += 1
        stats.predictions += 1
        stats.outputs.append(output)
        stats.truths.append(example.truth)
        stats.versions[version] += 1
        stats.last_version = version
        stats.first_seen.setdefault(version, time.time())
        if self._random.random() < self.feedback_fraction:
            if example.observation is not None:
                url = "/v1/feedback/observations"
                feedback: Any = [{**example.observation, "value": example.truth, "source": "demo"}]
            else:
                url = f"/v1/feedback/{body['request_id']}"
                feedback = {"value": example.truth, "source": "demo"}
            try:
                self._http.post(url, json=feedback).raise_for_status()
                stats.feedback += 1
            except httpx.HTTPError:
                stats.errors += 1
