"""Alertmanager webhook payload, version 4 (what Alertmanager POSTs to a webhook)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Alertmanager writes RFC 3339 with up to nanosecond precision; datetime keeps microseconds.
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: str) -> datetime:
    match = _RFC3339.match(value.strip())
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    date, time, fraction, zone = match.groups()
    micros = (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{date}T{time}.{micros}{zone}").astimezone(UTC)


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(alias="startsAt")
    ends_at: str | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")
    fingerprint: str = Field(min_length=1)

    @field_validator("starts_at")
    @classmethod
    def _starts_at_is_a_timestamp(cls, value: str) -> str:
        parse_rfc3339(value)
        return value

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def model(self) -> str | None:
        return self.labels.get("model") or None

    @property
    def started(self) -> datetime:
        return parse_rfc3339(self.starts_at)


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[Alert]
