"""Errors a dataset user can act on; every message names what is wrong."""

from __future__ import annotations


class DatasetError(ValueError):
    """Base class for dataset problems a user can fix."""


class UnknownDatasetError(DatasetError):
    """A dataset name that no loader registered."""


class DatasetValidationError(DatasetError):
    """Data that breaks its declared schema.

    ``problems`` maps a column name to a short description that includes the
    number of rows affected, e.g. ``{"review_score": "12 rows outside 1..5"}``.
    """

    def __init__(self, message: str, problems: dict[str, str] | None = None):
        super().__init__(message)
        self.problems = dict(problems or {})


class DatasetSourceError(OSError):
    """A source that exists in principle but could not be read (HTTP, network)."""
