"""KServe model repository whose ``load(name)`` (re)loads a served model from its URI.

``POST /v2/repository/models/{name}/load`` (and gRPC ``RepositoryModelLoad``)
re-resolves the model's URI and swaps in the version it points at now.
``.../unload`` takes the model out of service: it stays registered (so ``load``
can bring it back from its URI) but is not ready -- ``/v2/models/NAME/ready``,
``/v2/health/ready`` and inference answer 503 until the next ``load``.

With ``--workers N`` (N > 1) every REST worker process, and the parent that
serves gRPC, holds its own repository: a call would reach one process and leave
the others serving something else. :class:`SingleProcessRepositoryExtension`
refuses both calls there (``RepositoryChangeRefused``: REST 409, gRPC
``FAILED_PRECONDITION``) instead of half-applying them.
"""

from __future__ import annotations

import asyncio

from kserve import ModelRepository
from kserve.protocol.model_repository_extension import ModelRepositoryExtension


class RepositoryChangeRefused(Exception):
    """A repository load/unload that this predictor cannot apply to every process."""


class SingleProcessRepositoryExtension(ModelRepositoryExtension):
    """KServe's repository extension, refusing load/unload when ``workers`` > 1."""

    def __init__(self, model_registry: ModelRepository, workers: int = 1) -> None:
        super().__init__(model_registry)
        self.workers = workers

    def _refuse_with_several_workers(self, action: str) -> None:
        if self.workers > 1:
            raise RepositoryChangeRefused(
                f"repository {action} is not supported with --workers {self.workers}: each "
                "worker process holds its own copy of the model and the call would reach only "
                "one of them; restart the predictor to change what it serves"
            )

    async def load(self, model_name: str) -> None:
        self._refuse_with_several_workers("load")
        await super().load(model_name)

    async def unload(self, model_name: str) -> None:
        self._refuse_with_several_workers("unload")
        await super().unload(model_name)


class ReloadingModelRepository(ModelRepository):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unloaded: set[str] = set()

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if model is None or not hasattr(model, "reload"):
            raise KeyError(f"model {name!r} is not served here")
        # loading reads MLflow and unpickles weights: keep it off the event loop
        await asyncio.to_thread(model.reload, True)
        self.unloaded.discard(name)
        return model.ready

    def unload(self, name: str) -> None:
        model = self.get_model(name)
        if model is None:
            raise KeyError(f"model with name {name} does not exist")
        if not hasattr(model, "reload"):  # not one of ours: KServe's behaviour
            super().unload(name)
            return
        self.unloaded.add(name)
        model.ready = False

    def is_unloaded(self, name: str) -> bool:
        return name in self.unloaded

    async def is_model_ready(self, name: str) -> bool:
        if name in self.unloaded:
            return False
        return await super().is_model_ready(name)

    async def all_ready(self) -> bool:
        """At least one model, and every registered model ready."""
        names = list(self.get_models())
        if not names:
            return False
        for name in names:
            if not await self.is_model_ready(name):
                return False
        return True
