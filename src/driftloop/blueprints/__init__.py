"""Use cases. ``get_blueprint(spec)`` returns a fresh Blueprint instance.

``spec`` is a name ("sentiment"), a ``BlueprintSpec``, or its JSON text
('{"name": "tabular", "options": {"target": "species"}}'), as tagged on every
model version. Blueprints are imported only when asked for (each pulls in its
ML stack); another use case registers itself with
``register_blueprint(name, "module:Class")``.
"""

from __future__ import annotations

import importlib

from driftloop.blueprints.base import Blueprint, Metric, ParamChoice, ParamRange
from driftloop.blueprints.spec import BlueprintSpec, BlueprintSpecError

_BLUEPRINTS: dict[str, str] = {
    "sentiment": "driftloop.blueprints.sentiment:SentimentBlueprint",
    "tabular": "driftloop.blueprints.tabular.blueprint:TabularBlueprint",
    "vision": "driftloop.blueprints.vision.blueprint:VisionBlueprint",
    "forecast": "driftloop.blueprints.forecast.blueprint:ForecastBlueprint",
    "recsys": "driftloop.blueprints.recsys.blueprint:RecsysBlueprint",
}


class UnknownBlueprintError(ValueError):
    """A blueprint name nobody registered."""


def register_blueprint(name: str, target: str) -> None:
    """Register ``"package.module:ClassName"`` under ``name``."""
    if ":" not in target:
        raise ValueError(f"blueprint target must be 'module:Class', got {target!r}")
    _BLUEPRINTS[name] = target


def list_blueprints() -> list[str]:
    return sorted(_BLUEPRINTS)


def get_blueprint(spec: str | BlueprintSpec | Blueprint, **options) -> Blueprint:
    """The blueprint instance ``spec`` names; ``options`` add to the spec's options."""
    if isinstance(spec, Blueprint):
        return spec
    if not isinstance(spec, BlueprintSpec):
        spec = BlueprintSpec.parse(spec)
    try:
        target = _BLUEPRINTS[spec.name]
    except KeyError:
        raise UnknownBlueprintError(
            f"unknown blueprint {spec.name!r}; known blueprints: {', '.join(list_blueprints())}"
        ) from None
    module_name, class_name = target.split(":")
    blueprint_class = getattr(importlib.import_module(module_name), class_name)
    try:
        return blueprint_class(**(spec.options | options))
    except TypeError as exc:  # an option the blueprint does not take
        raise BlueprintSpecError(f"blueprint {spec.name!r}: {exc}") from None


def text_vectorizer(model):
    """The fitted texts -> features part of a text model (see blueprints.text)."""
    from driftloop.blueprints.text import text_vectorizer as _text_vectorizer

    return _text_vectorizer(model)


__all__ = [
    "Blueprint",
    "BlueprintSpec",
    "BlueprintSpecError",
    "Metric",
    "ParamChoice",
    "ParamRange",
    "UnknownBlueprintError",
    "get_blueprint",
    "list_blueprints",
    "register_blueprint",
    "text_vectorizer",
]
