"""Recent predictions from the prediction/feedback store, read-only (never migrates it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from driftloop.store import schema
from driftloop.store.core import create_store_engine


def recent_predictions(
    store_url: str, model: str, limit: int = 25, version: str | None = None
) -> list[dict[str, Any]]:
    """The newest predictions of ``model`` (of one ``version`` if given), newest first,
    with how many feedback rows each got."""
    engine = create_store_engine(store_url)
    try:
        if not sa.inspect(engine).has_table(schema.predictions.name):
            return []
        p, f = schema.predictions, schema.feedback
        feedback_count = (
            sa.select(sa.func.count()).where(f.c.request_id == p.c.request_id).scalar_subquery()
        )
        query = (
            sa.select(
                p.c.request_id,
                p.c.model_version,
                p.c.inputs,
                p.c.outputs,
                p.c.label,
                p.c.confidence,
                p.c.created_at,
                feedback_count.label("feedback"),
            )
            .where(p.c.model_name == model)
            .where(p.c.model_version == version if version is not None else sa.true())
            .order_by(p.c.created_at.desc(), p.c.id.desc())
            .limit(limit)
        )
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
    finally:
        engine.dispose()
