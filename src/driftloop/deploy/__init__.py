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

import abc
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop.settings import Settings

# RolloutResult.status values
READY = "ready"
TIMEOUT = "timeout"
NO_LOCAL_PREDICTOR = "no local predictor running"


class DeployError(RuntimeError):
    """A rollout that cannot start; the message names what to fix."""


@dataclass(frozen=True)
class RolloutResult:
    model_name: str
    version: str
    model_uri: str
    target: str  # "local" | "kubernetes"
    status: str  # READY | TIMEOUT | NO_LOCAL_PREDICTOR
    ready: bool
    elapsed_s: float
    message: str = ""
    url: str | None = None  # where the model is served, when known
    revision: str | None = None  # the driftloop.io/revision the rollout set

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def registry_model_uri(model_name: str, version: str) -> str:
    """The registry URI a rollout serves when the caller gives none."""
    if not model_name:
        raise DeployError("model name must not be empty")
    if not version:
        raise DeployError("--version must not be empty")
    return f"models:/{model_name}/{version}"


class Deployer(abc.ABC):
    target: str

    @abc.abstractmethod
    def roll_out(
        self, model_name: str, version: str, model_uri: str | None = None
    ) -> RolloutResult:
        """Serve ``model_uri`` (default ``models:/NAME/VERSION``) and wait for it."""


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
