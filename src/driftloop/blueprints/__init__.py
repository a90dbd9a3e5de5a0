"""Use cases. ``get_blueprint("sentiment")`` returns a fresh Blueprint.

Blueprints are imported only when asked for (each pulls in its ML stack);
another use case registers itself with ``register_blueprint(name, "module:Class")``.
"""

from __future__ import annotations

import importlib

from driftloop.blueprints.base import Blueprint, ParamRange

_BLUEPRINTS: dict[str, str] = {
    "sentiment": "driftloop.blueprints.sentiment:SentimentBlueprint",
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


def get_blueprint(name: str | Blueprint, **options) -> Blueprint:
    if isinstance(name, Blueprint):
        return name
    try:
        target = _BLUEPRINTS[name]
    except KeyError:
        raise UnknownBlueprintError(
            f"unknown blueprint {name!r}; known blueprints: {', '.join(list_blueprints())}"
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)(**options)


def text_vectorizer(model):
    """The fitted texts -> features part of a text model (see blueprints.text)."""
    from driftloop.blueprints.text import text_vectorizer as _text_vectorizer

    return _text_vectorizer(model)


__all__ = [
    "Blueprint",
    "ParamRange",
    "UnknownBlueprintError",
    "get_blueprint",
    "list_blueprints",
    "register_blueprint",
    "text_vectorizer",
]
