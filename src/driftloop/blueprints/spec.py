"""A blueprint instance as text: a name, or a name plus options as JSON.

Pipelines pass the blueprint between steps as one string parameter, and every
model version carries it as a tag, so the predictor, monitor, gate and
trigger rebuild exactly the instance that trained the version:

    "sentiment"
    '{"name": "tabular", "options": {"target": "species", "task": "classification"}}'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class BlueprintSpecError(ValueError):
    """A blueprint string that is neither a name nor a {"name", "options"} object."""


@dataclass(frozen=True)
class BlueprintSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> BlueprintSpec:
        text = (text or "").strip()
        if not text:
            raise BlueprintSpecError("blueprint is empty: give a name such as 'sentiment'")
        if not text.startswith("{"):
            return cls(text)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BlueprintSpecError(f"blueprint spec is not valid JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise BlueprintSpecError('blueprint spec must be {"name": ..., "options": {...}}')
        options = document.get("options") or {}
        if not isinstance(options, dict):
            raise BlueprintSpecError('blueprint spec "options" must be an object')
        return cls(document["name"], {k: v for k, v in options.items() if v is not None})

    def to_text(self) -> str:
        """The canonical string: the bare name when there are no options."""
        if not self.options:
            return self.name
        return json.dumps({"name": self.name, "options": self.options}, sort_keys=True)

    def __str__(self) -> str:
        return self.to_text()
