"""What the monitor watches: the version behind an alias, and its feedback.

Both are read by polling (the registry and the prediction store have no
push channel), the same way the predictor notices a new champion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from driftloop.lineage import TAG_DRIFT_REFERENCE, TAG_METRIC_VALUE, TAG_PROMOTED_AT
from driftloop.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchedVersion:
    version: str
    reference_uri: str | None
    test_score: float | None
    since: datetime  # feedback on this version counts from here


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
        return WatchedVersion(
            version=info.version,
            reference_uri=info.tags.get(TAG_DRIFT_REFERENCE) or None,
            test_score=_float(info.tags.get(TAG_METRIC_VALUE)),
            # a rolled-back champion was promoted again: older feedback belongs to its first reign
            since=max(promoted, info.created) if promoted else info.created,
        )


class FeedbackSource:
    """Feedback counts and live accuracy from the prediction store."""

    def __init__(self, store_url: str) -> None:
        from driftloop.store import PredictionStore

        # the predictor owns the schema; a reader running migrations too would race it
        self.store = PredictionStore(store_url, run_migrations=False)

    def stats(self, model_name: str, version: str, since: datetime):
        total = self.store.feedback_stats(model_name)
        champion = self.store.feedback_stats(model_name, since=since, version=version)
        return total, champion

    def close(self) -> None:
        self.store.close()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
