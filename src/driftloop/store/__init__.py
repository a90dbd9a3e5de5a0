"""The prediction log and feedback store (SQLAlchemy 2 + Alembic; SQLite or PostgreSQL).

- ``core`` -- :class:`PredictionStore` (reads/writes), the record types,
  :func:`migrate` and :func:`create_store_engine`.
- ``schema`` -- the SQLAlchemy Core tables the code queries against.
- ``writer.StoreWriter`` -- writes prediction rows off the request path (imported
  from its module; it is not re-exported here so this package stays free of the
  serving metrics).
- ``migrations`` -- the Alembic chain that owns the schema; :func:`migrate`
  applies it and every :class:`PredictionStore` runs it on open.
"""

from driftloop.store.core import (
    FeedbackPair,
    FeedbackRecord,
    FeedbackStats,
    ObservedPrediction,
    PredictionRecord,
    PredictionStore,
    alembic_config,
    create_store_engine,
    migrate,
)

__all__ = [
    "FeedbackPair",
    "FeedbackRecord",
    "FeedbackStats",
    "ObservedPrediction",
    "PredictionRecord",
    "PredictionStore",
    "alembic_config",
    "create_store_engine",
    "migrate",
]
