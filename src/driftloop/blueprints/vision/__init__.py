"""The vision blueprint: image classification (see ``blueprint``)."""

from driftloop.blueprints.vision.blueprint import VisionBlueprint

__all__ = ["VisionBlueprint"]
