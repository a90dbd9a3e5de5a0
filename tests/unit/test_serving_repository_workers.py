"""Repository load/unload with several REST workers: refused, nothing changed."""

from __future__ import annotations

import asyncio

import pytest
from kserve import Model

from driftloop.serving.repository import (
    ReloadingModelRepository,
    RepositoryChangeRefused,
    SingleProcessRepositoryExtension,
)


class _Reloadable(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True
        self.reloads = 0

    def reload(self, force: bool = False) -> None:  # noqa: ARG002 - the served model's API
        self.reloads += 1
        self.ready = True


def _repository() -> tuple[ReloadingModelRepository, _Reloadable]:
    repository = ReloadingModelRepository()
    model = _Reloadable("m")
    repository.update(model)
    return repository, model


@pytest.mark.parametrize("action", ["load", "unload"])
def test_several_workers_refuse_and_change_nothing(action):
    repository, model = _repository()
    extension = SingleProcessRepositoryExtension(repository, workers=3)
    with pytest.raises(RepositoryChangeRefused, match=rf"repository {action} .*--workers 3"):
        asyncio.run(getattr(extension, action)("m"))
    assert model.ready and model.reloads == 0 and not repository.is_unloaded("m")


def test_one_worker_unloads_and_loads():
    repository, model = _repository()
    extension = SingleProcessRepositoryExtension(repository, workers=1)
    asyncio.run(extension.unload("m"))
    assert repository.is_unloaded("m") and not model.ready
    asyncio.run(extension.load("m"))
    assert not repository.is_unloaded("m") and model.ready and model.reloads == 1
