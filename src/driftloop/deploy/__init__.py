"""Roll a registered model version out to wherever the predictor runs.

One interface (:class:`Deployer`), two implementations, chosen in exactly one
place, :func:`get_deployer`, from ``settings.target``:

* :class:`~driftloop.deploy.local.LocalDeployer` -- the embedded stack: the
  local predictor reloads the champion by itself, so rolling out means waiting
  (bounded) until its v2 model metadata reports the version.
* :class:`~driftloop.deploy.kubernetes.KubernetesDeployer` -- patches the
  model's KServe ``InferenceService`` so it serves ``models:/NAME/VERSION`` and
  waits (bounded) for it to become Ready again.

Both return a :class:`RolloutResult`; neither raises for a rollout that merely
did not finish in time (``status="timeout"``). :class:`DeployError` is for
what a user must fix (no such InferenceService, no cluster credentials).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftloop.deploy.base import (
    NO_LOCAL_PREDICTOR,
    READY,
    TIMEOUT,
    Deployer,
    DeployError,
    RolloutResult,
    registry_model_uri,
)

if TYPE_CHECKING:
    from driftloop.settings import Settings


def get_deployer(settings: Settings | None = None, **options: Any) -> Deployer:
    """The deployer for ``settings.target``: the one place the target is chosen."""
    if settings is None:
        from driftloop.settings import get_settings

        settings = get_settings()
    if settings.target == "kubernetes":
        from driftloop.deploy.kubernetes import KubernetesDeployer

        return KubernetesDeployer.from_settings(settings, **options)
    from driftloop.deploy.local import LocalDeployer

    return LocalDeployer.from_settings(settings, **options)


__all__ = [
    "NO_LOCAL_PREDICTOR",
    "READY",
    "TIMEOUT",
    "DeployError",
    "Deployer",
    "RolloutResult",
    "get_deployer",
    "registry_model_uri",
]
