"""Label mappings: how raw source values (scores, sentiments) become labels.

A mapping is configuration, so it parses from the string a user types on the
command line (``"negative=1,2;positive=4,5"``) and from dicts (YAML/JSON).
Raw values that no label claims are dropped by :meth:`LabelMapping.apply`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd


def _raw_key(value: object) -> str:
    """Raw values compare as text, so 4, 4.0 and "4" all mean score 4."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass(frozen=True)
class LabelMapping:
    """label -> the raw values that map to it, in declaration order."""

    groups: tuple[tuple[str, tuple[str, ...]], ...]

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("label mapping is empty: declare at least one label")
        seen: dict[str, str] = {}
        for label, raws in self.groups:
            if not label:
                raise ValueError("label mapping has an empty label name")
            if not raws:
                raise ValueError(f"label {label!r} has no raw values")
            for raw in raws:
                if raw in seen and seen[raw] != label:
                    raise ValueError(f"raw value {raw!r} maps to both {seen[raw]!r} and {label!r}")
                seen[raw] = label
        if len({label for label, _ in self.groups}) != len(self.groups):
            raise ValueError("label mapping declares a label twice")

    # --- constructors ------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> LabelMapping:
        """Parse ``"negative=1,2;positive=4,5"`` (``;`` between labels)."""
        groups = []
        for part in (p.strip() for p in text.split(";")):
            if not part:
                continue
            label, sep, raws = part.partition("=")
            if not sep:
                raise ValueError(
                    f"label mapping part {part!r} has no '=': "
                    "write e.g. 'negative=1,2;positive=4,5'"
                )
            values = tuple(_raw_key(r) for r in raws.split(",") if r.strip())
            groups.append((label.strip(), values))
        return cls(tuple(groups))

    @classmethod
    def from_dict(cls, mapping: Mapping[object, object]) -> LabelMapping:
        """Accept ``{label: [raw, ...]}`` or ``{raw: label}``."""
        if not mapping:
            raise ValueError("label mapping is empty: declare at least one label")
        if all(isinstance(v, Iterable) and not isinstance(v, str) for v in mapping.values()):
            return cls(
                tuple(
                    (str(label), tuple(_raw_key(r) for r in raws))
                    for label, raws in mapping.items()
                )
            )
        if all(isinstance(v, str) for v in mapping.values()):
            grouped: dict[str, list[str]] = {}
            for raw, label in mapping.items():
                grouped.setdefault(label, []).append(_raw_key(raw))
            return cls(tuple((label, tuple(raws)) for label, raws in grouped.items()))
        raise ValueError("label mapping dict must be {label: [raw, ...]} or {raw: label}")

    @classmethod
    def coerce(
        cls, value: LabelMapping | str | Mapping | None, default: LabelMapping
    ) -> LabelMapping:
        if value is None:
            return default
        if isinstance(value, LabelMapping):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(
            f"label_mapping must be a string, dict or LabelMapping, not {type(value).__name__}"
        )

    # --- use -----------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.groups)

    def lookup(self) -> dict[str, str]:
        return {raw: label for label, raws in self.groups for raw in raws}

    def apply(self, raw: pd.Series) -> pd.Series:
        """Map raw values to labels; unmapped values become <NA> (callers drop them)."""
        table = self.lookup()
        return raw.map(lambda v: table.get(_raw_key(v)) if pd.notna(v) else None).astype("string")

    def __str__(self) -> str:
        return ";".join(f"{label}={','.join(raws)}" for label, raws in self.groups)


OLIST_DEFAULT = LabelMapping.parse("negative=1,2;positive=4,5")
OLIST_WITH_NEUTRAL = LabelMapping.parse("negative=1,2;neutral=3;positive=4,5")
TWEETS_DEFAULT = LabelMapping.parse("negative=negative;positive=positive")
ROTTEN_TOMATOES_DEFAULT = LabelMapping.parse("negative=rotten;positive=fresh")
