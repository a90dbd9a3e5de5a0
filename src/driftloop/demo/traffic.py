"""Live traffic for the demo: predictions over HTTP, and feedback for some of them."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from driftloop.serving.client import PredictorClient, PredictorError


@dataclass
class TrafficStats:
    requests: int = 0
    texts: int = 0
    correct: int = 0
    feedback: int = 0
    errors: int = 0
    versions: Counter = field(default_factory=Counter)
    last_version: str | None = None
    first_seen: dict[str, float] = field(default_factory=dict)  # version -> time.time()

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.texts if self.texts else None


class TrafficReplayer:
    """Sends a frame's texts in small batches; sends the true label back for a fraction."""

    def __init__(
        self,
        client: PredictorClient,
        model: str,
        *,
        batch_size: int = 1,  # feedback is per request: one text per request
        feedback_fraction: float = 0.5,
        seed: int = 42,
    ) -> None:
        self.client = client
        self.model = model
        self.batch_size = batch_size
        self.feedback_fraction = feedback_fraction
        self._random = random.Random(seed)

    def send(self, rows: pd.DataFrame, stats: TrafficStats, protocol: str = "v2") -> None:
        """One batch: predict, then feedback for the sampled share of it."""
        texts = rows["text"].tolist()
        try:
            predictions = self.client.predict(self.model, texts, protocol=protocol)
        except PredictorError:
            stats.errors += 1
            return
        stats.requests += 1
        stats.texts += len(texts)
        for prediction, truth in zip(predictions, rows["label"], strict=True):
            stats.versions[str(prediction.model_version)] += 1
            stats.last_version = str(prediction.model_version)
            stats.first_seen.setdefault(stats.last_version, time.time())
            stats.correct += prediction.label == truth
            if self._random.random() < self.feedback_fraction:
                try:
                    self.client.feedback(prediction.request_id, label=truth, source="demo")
                    stats.feedback += 1
                except PredictorError:
                    stats.errors += 1

    def batches(self, frame: pd.DataFrame):
        for start in range(0, len(frame), self.batch_size):
            yield frame.iloc[start : start + self.batch_size]
