"""KServe model repository whose ``load(name)`` hot-reloads a served model.

``POST /v2/repository/models/{name}/load`` (and gRPC ``RepositoryModelLoad``)
re-resolves the model's URI and swaps in the version it points at now. With
several workers the call reaches only the worker that received it; the others
catch up at their next reload poll.
"""

from __future__ import annotations

import asyncio

from kserve import ModelRepository


class ReloadingModelRepository(ModelRepository):
    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if model is None or not hasattr(model, "reload"):
            raise KeyError(f"model {name!r} is not served here")
        # loading reads MLflow and unpickles weights: keep it off the event loop
        await asyncio.to_thread(model.reload, True)
        return model.ready
