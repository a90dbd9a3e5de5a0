"""Named datasets: shipped offline corpora and real-source connectors.

Every loader returns a canonical labelled-text frame: ``id`` (str, unique),
``text`` (str, non-empty), ``label`` (str) and optionally ``timestamp``.

    >>> from driftloop.datasets import load_dataset, list_datasets
    >>> list_datasets()
    ['olist-reviews', 'sentiment-offline', 'sentiment-tweets']
    >>> frame = load_dataset("olist-reviews", "reviews.csv", label_mapping="bad=1,2;good=5")
"""

from __future__ import annotations

from driftloop.datasets import olist as _olist  # noqa: F401  (registers "olist-reviews")
from driftloop.datasets import shipped as _shipped  # noqa: F401  (registers the shipped corpora)
from driftloop.datasets.errors import (
    DatasetError,
    DatasetSourceError,
    DatasetValidationError,
    UnknownDatasetError,
)
from driftloop.datasets.files import (
    ingest_to,
    read_frame,
    validate_file,
    validate_labelled_text,
    write_frame,
)
from driftloop.datasets.fingerprint import frame_fingerprint, stable_id
from driftloop.datasets.labels import OLIST_DEFAULT, OLIST_WITH_NEUTRAL, LabelMapping
from driftloop.datasets.registry import dataset_info, list_datasets, load_dataset, register_dataset
from driftloop.datasets.schemas import CANONICAL_COLUMNS, validate_frame

DEFAULT_DATASET = "sentiment-offline"

__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_DATASET",
    "DatasetError",
    "DatasetSourceError",
    "DatasetValidationError",
    "LabelMapping",
    "OLIST_DEFAULT",
    "OLIST_WITH_NEUTRAL",
    "UnknownDatasetError",
    "dataset_info",
    "frame_fingerprint",
    "ingest_to",
    "list_datasets",
    "load_dataset",
    "read_frame",
    "register_dataset",
    "stable_id",
    "validate_file",
    "validate_frame",
    "validate_labelled_text",
    "write_frame",
]
