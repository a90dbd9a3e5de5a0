"""The sentiment demo's traffic: a training file, held-out in-domain traffic and shifted traffic.

v1 trains on Rotten Tomatoes snippets (``sentiment-offline``); live traffic
first replays held-out snippets, then switches to tweets
(``sentiment-tweets``): another vocabulary (mentions, hashtags, links) and
another label prior (about 70 % negative against 50 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop.datasets import load_dataset
from driftloop.demo.sources import DemoData, DemoPlan, TrafficSource
from driftloop.demo.traffic import Example

# the raw column values the sentiment-offline loader maps (fresh -> positive, rotten -> negative)
RAW_CATEGORY = {"positive": "fresh", "negative": "rotten"}


@dataclass(frozen=True)
class DemoSizes:
    train_rows: int  # film snippets v1 trains on
    retrain_rows: int  # labelled snippets arriving later: the retraining's base data
    baseline_requests: int  # held-out snippets replayed as in-domain traffic
    shifted_requests: int  # tweets replayed after the shift
    # Events per drift window. A window must fill with tweets before drift can be
    # detected, so it also sets how much tweet feedback exists when retraining starts.
    monitor_window: int


# v1 learns from an early, small labelled set; by the time the traffic shifts, twice as
# many labelled snippets have arrived. The challenger trains on those plus the tweet
# feedback, and is scored against the champion on rows neither has seen.
QUICK = DemoSizes(
    train_rows=1000,
    retrain_rows=2000,
    baseline_requests=150,
    shifted_requests=1500,
    monitor_window=400,
)
FULL = DemoSizes(
    train_rows=1500,
    retrain_rows=3000,
    baseline_requests=300,
    shifted_requests=3000,
    monitor_window=500,
)


def write_raw(frame: pd.DataFrame, path: Path) -> Path:
    """In the shipped corpus's own format, so the sentiment-offline loader reads it."""
    raw = pd.DataFrame({"category": frame["label"].map(RAW_CATEGORY), "text": frame["text"]})
    raw.to_csv(path, index=False)
    return path


def prepare(directory: Path, sizes: DemoSizes, seed: int = 42) -> DemoData:
    """Disjoint slices: held-out traffic, v1's training data, the retraining's base data.

    The retraining never sees v1's training rows, so re-scoring the champion on
    the retraining's test split cannot flatter it with rows it was trained on.
    """
    directory.mkdir(parents=True, exist_ok=True)
    snippets = load_dataset("sentiment-offline").sample(frac=1.0, random_state=seed)
    held_out = snippets.head(sizes.baseline_requests)
    rest = snippets.iloc[sizes.baseline_requests :]
    if sizes.train_rows + sizes.retrain_rows > len(rest):
        raise ValueError(f"the corpus has {len(rest)} snippets after the held-out ones")
    training = rest.iloc[: sizes.train_rows]
    retraining = rest.iloc[sizes.train_rows : sizes.train_rows + sizes.retrain_rows]
    tweets = load_dataset("sentiment-tweets").sample(
        n=sizes.shifted_requests, random_state=seed, replace=False
    )
    return DemoData(
        train_source=write_raw(training, directory / "snippets-v1.csv"),
        retrain_source=write_raw(retraining, directory / "snippets-since-v1.csv"),
        train_rows=len(training),
        retrain_rows=len(retraining),
        baseline=examples(held_out),
        shifted=examples(tweets),
        describe_data=(
            f"data: {len(training)} film snippets for v1, {len(retraining)} more labelled since "
            f"(the retraining's base data), {len(held_out)} held out as live traffic, "
            f"{len(tweets)} tweets for the shift"
        ),
        describe_shift="traffic shifts to tweets (new vocabulary, ~70% negative)",
    )


def examples(frame: pd.DataFrame) -> list[Example]:
    return [Example(text, label) for text, label in zip(frame["text"], frame["label"], strict=True)]


class SentimentTraffic(TrafficSource):
    model = "sentiment"

    def plan(self, quick: bool) -> DemoPlan:
        sizes = QUICK if quick else FULL
        return DemoPlan(
            blueprint="sentiment",
            dataset="sentiment-offline",
            monitor_window=sizes.monitor_window,
            # v1 is a deliberately small first model; it must still be served
            settings={"promotion_floor": 0.55},
        )

    def prepare(self, directory: Path, quick: bool, seed: int) -> DemoData:
        return prepare(directory, QUICK if quick else FULL, seed)
