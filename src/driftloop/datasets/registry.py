"""Named datasets: a loader registers itself under a name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop.datasets.errors import UnknownDatasetError
from driftloop.datasets.schemas import validate_frame

Loader = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    needs_source: bool
    loader: Loader


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, description: str = "", needs_source: bool = False):
    """Decorator: ``@register_dataset("olist-reviews")`` over ``loader(source, **options)``."""

    def decorate(loader: Loader) -> Loader:
        if name in _DATASETS and _DATASETS[name].loader is not loader:
            raise ValueError(f"dataset {name!r} is already registered")
        doc = description or (loader.__doc__ or "").strip().splitlines()[0:1]
        _DATASETS[name] = DatasetInfo(
            name, doc if isinstance(doc, str) else "".join(doc), needs_source, loader
        )
        return loader

    return decorate


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return _DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}"
        ) from None


def load_dataset(name: str, source: str | Path | None = None, **options) -> pd.DataFrame:
    """Load a named dataset as a validated frame with columns id, text, label[, timestamp]."""
    info = dataset_info(name)
    if info.needs_source and source is None:
        raise ValueError(f"dataset {name!r} needs a source: a file path or an http(s) URL")
    frame = info.loader(source, **options)
    return validate_frame(frame, what=f"dataset {name!r}").reset_index(drop=True)
