"""The rollout interface: :class:`Deployer`, its :class:`RolloutResult` and errors.

Both deployers (:mod:`.local`, :mod:`.kubernetes`) implement it; the package
(:func:`driftloop.deploy.get_deployer`) picks one. Kept apart from the package
``__init__`` so the implementations never import the module that imports them.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Any

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
