"""What the monitor watches: the version behind an alias, and its feedback.

Both are read by polling (the registry and the prediction store have no
push channel), the same way the predictor notices a new champion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop.blueprints.scoring import GREATER_IS_BETTER
from driftloop.lineage import (
    TAG_DRIFT_REFERENCE,
    TAG_METRIC_NAME,
    TAG_METRIC_VALUE,
    TAG_PROMOTED_AT,
)
from driftloop.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchedVersion:
    version: str
    reference_uri: str | None
    test_score: float | None
    since: datetime  # feedback on this version counts from here
    metric: str | None = None  # the primary metric the test score is of
    greater_is_better: bool | None = None  # its direction (None: unknown)
    feedback: Any = None  # the blueprint's ``Feedback`` (None: no usable blueprint tag)


@dataclass(frozen=True)
class LiveScore:
    """The champion's primary metric over recent judged predictions."""

    value: float | None  # None: fewer than the minimum of judged pairs, or no way to score
    samples: int  # (prediction, truth) pairs behind it
    # further live metrics the blueprint's feedback exports over the same pairs (a
    # forecaster's MAE beside its MASE); empty below the minimum of pairs
    metrics: dict[str, float] = field(default_factory=dict)


def live_score(feedback: Any, pairs: Sequence[Any], *, min_samples: int) -> LiveScore:
    """``feedback.live_score`` over stored prediction/feedback pairs.

    A pair's ground truth (``value``) scores each instance of its request: a
    list as long as the request, item by item; anything else applies to every
    instance (the feedback API takes one truth for a request). Pairs without a
    value (only "right"/"wrong") are not scored.
    """
    outputs: list[dict] = []
    truths: list[Any] = []
    for pair in pairs:
        if pair.value is None or not pair.outputs:
            continue
        if isinstance(pair.value, list) and len(pair.value) == len(pair.outputs):
            instance_truths = list(pair.value)
        else:
            instance_truths = [pair.value] * len(pair.outputs)
        for output, truth in zip(pair.outputs, instance_truths, strict=True):
            if isinstance(output, dict) and truth is not None:
                outputs.append(output)
                truths.append(truth)
    if feedback is None or len(truths) < max(min_samples, 1):
        return LiveScore(None, len(truths))
    try:
        value = float(feedback.live_score(outputs, truths))
        extra = {
            name: float(metric)
            for name, metric in feedback.live_metrics(outputs, truths).items()
            if math.isfinite(float(metric))
        }
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("cannot compute the live score over %d pairs: %s", len(truths), exc)
        return LiveScore(None, len(truths))
    return LiveScore(value if math.isfinite(value) else None, len(truths), extra)


class ChampionSource:
    """Resolves ``alias`` of ``model_name`` in the MLflow registry."""

    def __init__(self, model_name: str, alias: str, settings: Settings) -> None:
        from driftloop.registry import ModelRegistry, parse_timestamp

        self.model_name = model_name
        self.alias = alias
        self._parse_timestamp = parse_timestamp
        self.registry = ModelRegistry(settings.resolved_tracking_uri)

    def current(self) -> WatchedVersion | None:
        if not self.registry.exists(self.model_name):
            return None
        info = self.registry.version_by_alias(self.model_name, self.alias)
        if info is None:
            return None
        promoted = self._parse_timestamp(info.tags.get(TAG_PROMOTED_AT))
        metric, greater, feedback = _metric_of(info)
        return WatchedVersion(
            version=info.version,
            reference_uri=info.tags.get(TAG_DRIFT_REFERENCE) or None,
            test_score=_float(info.tags.get(TAG_METRIC_VALUE)),
            # a rolled-back champion was promoted again: older feedback belongs to its first reign
            since=max(promoted, info.created) if promoted else info.created,
            metric=metric,
            greater_is_better=greater,
            feedback=feedback,
        )


def _metric_of(info) -> tuple[str | None, bool | None, Any]:  # noqa: ANN001 - a VersionInfo
    """(metric name, greater is better, the blueprint's Feedback) of a registered version."""
    name = info.tags.get(TAG_METRIC_NAME) or None
    try:
        blueprint = info.blueprint()
    except Exception as exc:  # no or unknown blueprint tag: no live score, counts still work
        log.warning("%s v%s: no live score: %s", info.name, info.version, exc)
        return name, GREATER_IS_BETTER.get(name) if name else None, None
    metric = blueprint.metric
    name = name or metric.name
    greater = metric.greater_is_better if name == metric.name else GREATER_IS_BETTER.get(name)
    # the feedback's live score is the blueprint's default metric; a version ranked by
    # another one (a ``metric`` option) has a test value it would not compare with
    if name != blueprint.default_metric.name:
        log.warning(
            "%s v%s: test metric %s is not what live feedback scores (%s): no live score",
            info.name,
            info.version,
            name,
            blueprint.default_metric.name,
        )
        return name, greater, None
    return name, greater, blueprint.feedback


class FeedbackSource:
    """Feedback counts and prediction/feedback pairs from the prediction store."""

    def __init__(self, store_url: str) -> None:
        from driftloop.store import PredictionStore

        # the predictor owns the schema; a reader running migrations too would race it
        self.store = PredictionStore(store_url, run_migrations=False)

    def stats(self, model_name: str, version: str, since: datetime):
        total = self.store.feedback_stats(model_name)
        champion = self.store.feedback_stats(model_name, since=since, version=version)
        return total, champion

    def pairs(self, model_name: str, version: str, since: datetime, limit: int):
        """The newest ``limit`` prediction/feedback pairs of ``version`` since ``since``."""
        return self.store.feedback_pairs(model_name, since=since, limit=limit, version=version)

    def close(self) -> None:
        self.store.close()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
