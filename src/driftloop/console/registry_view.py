"""Models, versions, aliases and the gate's decision on each version, read from MLflow.

The decision fields are the tags :func:`driftloop.training.gate.decision_tags`
writes and the promotion/rollback tags :mod:`driftloop.registry` writes; the
split fingerprints are the lineage tags (:func:`driftloop.lineage.split_fingerprint_tag`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftloop import lineage
from driftloop.registry import ModelRegistry, ModelSummary, VersionInfo

_SPLIT_PREFIX = lineage.tag_key("split.")
_FINGERPRINT_SUFFIX = "_fingerprint"


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: list[str]
    created: str
    metric: str | None
    metric_value: float | None
    metric_split: str | None
    decision: str | None
    reason: str | None
    challenger_score: float | None
    champion_score: float | None
    champion_version: str | None
    required: float | None
    decided_at: str | None
    promoted_at: str | None
    rolled_back_at: str | None
    splits: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "none") else None
    except ValueError:
        return None


def _text(value: str | None) -> str | None:
    return value if value not in (None, "", "none") else None


def split_fingerprints(tags: dict[str, str]) -> dict[str, str]:
    """split name -> fingerprint, from ``driftloop.split.<split>_fingerprint`` tags."""
    found = {}
    for key, value in tags.items():
        if key.startswith(_SPLIT_PREFIX) and key.endswith(_FINGERPRINT_SUFFIX):
            found[key[len(_SPLIT_PREFIX) : -len(_FINGERPRINT_SUFFIX)]] = value
    return dict(sorted(found.items()))


def version_row(info: VersionInfo) -> VersionRow:
    tag = info.tags.get
    return VersionRow(
        version=info.version,
        aliases=list(info.aliases),
        created=info.created.isoformat(timespec="seconds"),
        metric=_text(tag(lineage.TAG_METRIC_NAME)),
        metric_value=_number(tag(lineage.TAG_METRIC_VALUE)),
        metric_split=_text(tag(lineage.TAG_METRIC_SPLIT)),
        decision=_text(tag(lineage.TAG_DECISION)),
        reason=_text(tag(lineage.TAG_DECISION_REASON)),
        challenger_score=_number(tag(lineage.TAG_CHALLENGER_SCORE)),
        champion_score=_number(tag(lineage.TAG_CHAMPION_SCORE)),
        champion_version=_text(tag(lineage.TAG_CHAMPION_VERSION)),
        required=_number(tag(lineage.TAG_DECISION_REQUIRED)),
        decided_at=_text(tag(lineage.TAG_DECISION_AT)),
        promoted_at=_text(tag(lineage.TAG_PROMOTED_AT)),
        rolled_back_at=_text(tag(lineage.TAG_ROLLED_BACK_AT)),
        splits=split_fingerprints(info.tags),
        run_id=info.run_id,
    )


class RegistryView:
    def __init__(self, tracking_uri: str) -> None:
        self.registry = ModelRegistry(tracking_uri=tracking_uri)

    def models(self) -> list[ModelSummary]:
        return self.registry.list_models()

    def versions(self, name: str) -> tuple[dict[str, str], list[VersionRow]]:
        """The model's aliases and its versions, newest first."""
        details = self.registry.describe(name)
        rows = [version_row(v) for v in details.versions]
        return details.aliases, list(reversed(rows))

    def champion(self, name: str) -> VersionInfo | None:
        return self.registry.version_by_alias(name, "champion")

    def blueprint_name(self, name: str) -> str | None:
        champion = self.champion(name)
        return champion.tags.get(lineage.TAG_BLUEPRINT_NAME) if champion else None


def decision_events(rows: list[VersionRow]) -> list[dict[str, Any]]:
    """Gate decisions and promotions as (time, text) marks for the plots."""
    events = []
    for row in rows:
        if row.decided_at:
            events.append(
                {"at": row.decided_at, "kind": "gate", "text": f"v{row.version} {row.decision}"}
            )
        if row.promoted_at:
            events.append(
                {"at": row.promoted_at, "kind": "promoted", "text": f"v{row.version} champion"}
            )
    return events
