"""What a blueprint's demo replays: the interface, and the registry of those that ship one.

A traffic source writes v1's training file and the retraining's base file,
and holds out two streams of :class:`~driftloop.demo.traffic.Example`: in-domain
traffic, and traffic after a shift the monitor should catch and a retrained
model should handle better. The scenario (``demo.scenario``) is the same for
every blueprint.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.demo.traffic import Example


@dataclass(frozen=True)
class DemoData:
    train_source: Path  # what v1 trains on
    retrain_source: Path  # labelled rows that arrived since v1: the retraining's base data
    train_rows: int
    retrain_rows: int
    baseline: list[Example]  # held out, in-domain
    shifted: list[Example]  # after the shift
    describe_data: str  # one line for the timeline
    describe_shift: str


@dataclass(frozen=True)
class DemoPlan:
    """Per-blueprint settings of the scenario."""

    blueprint: str  # BlueprintSpec text the pipelines get
    dataset: str  # the pipelines' dataset argument
    monitor_window: int  # events per drift window
    settings: dict[str, Any] = field(default_factory=dict)  # extra Settings fields
    baseline_feedback: float = 0.3
    shifted_feedback: float = 0.8
    # False where the honest gate may keep the champion (a forecaster that nothing beats
    # but persistence): the loop closes on the retraining's gate decision, whichever it is
    expects_promotion: bool = True
    # further arguments of the training and retraining pipelines (e.g. ``search``)
    pipeline_arguments: dict[str, Any] = field(default_factory=dict)


class TrafficSource(ABC):
    #: the registered model name the demo uses
    model: str

    @abstractmethod
    def plan(self, quick: bool) -> DemoPlan: ...

    @abstractmethod
    def prepare(self, directory: Path, quick: bool, seed: int) -> DemoData: ...


_SOURCES: dict[str, str] = {
    "sentiment": "driftloop.demo.sentiment_traffic:SentimentTraffic",
    "tabular": "driftloop.demo.tabular_traffic:TabularTraffic",
    "vision": "driftloop.demo.vision_traffic:VisionTraffic",
    "forecast": "driftloop.demo.forecast_traffic:ForecastTraffic",
    "recsys": "driftloop.demo.recsys_traffic:RecsysTraffic",
}


def demo_names() -> list[str]:
    return sorted(_SOURCES)


def traffic_source(name: str, **options: Any) -> TrafficSource:
    """The traffic a blueprint ships for its demo (``options`` go to its constructor)."""
    try:
        target = _SOURCES[name]
    except KeyError:
        raise ValueError(
            f"no demo traffic for blueprint {name!r}; demos exist for {', '.join(demo_names())}"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)
