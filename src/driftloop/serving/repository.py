"""KServe model repository whose ``load(name)`` (re)loads a served model from its URI.

``POST /v2/repository/models/{name}/load`` (and gRPC ``RepositoryModelLoad``)
re-resolves the model's URI and swaps in the version it points at now.
``.../unload`` takes the model out of service: it stays registered (so ``load``
can bring it back from its URI) but is not ready -- ``/v2/models/NAME/ready``,
``/v2/health/ready`` and inference answer 503 until the next ``load``. With
several workers the call reaches only the worker that received it; the others
catch up at their next reload poll (a load) or not at all (an unload).
"""

from __future__ import annotations

import asyncio

from kserve import ModelRepository


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
