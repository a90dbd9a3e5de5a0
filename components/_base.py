"""What every driftloop component shares: the image it runs in.

The image is read once, when the component modules are imported (that is, at
compile time), from ``settings.base_image`` -- ``DRIFTLOOP_BASE_IMAGE`` in the
environment. Building the image for a release and compiling the pipelines with
``DRIFTLOOP_BASE_IMAGE=<registry>/<image>:<tag>`` keeps the two in step.
"""

from __future__ import annotations

from kfp import dsl


def base_image() -> str:
    from driftloop.settings import Settings

    return Settings().base_image


def driftloop_component(func):
    """``@dsl.component`` for a step that runs inside the driftloop image.

    The image already ships the pinned kfp SDK, so the pip install that kfp
    would otherwise prepend is skipped: in the cluster the component pods have
    no route to a package index.
    """
    return dsl.component(func, base_image=base_image(), install_kfp_package=False)


__all__ = ["base_image", "driftloop_component"]
