"""Running one Alembic migration chain (the store's, the trigger ledger's) on an engine.

Each chain lives in its own package folder with its own version table, so two
chains can share a database; this module is what upgrading one looks like.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

# one upgrade at a time per process: several workers' runtimes start together
_lock = threading.Lock()


def alembic_config(script_location: Path, connection: sa.Connection):  # noqa: ANN201 - Config
    """An Alembic config for the chain at ``script_location``, running on ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def upgrade(
    script_location: Path,
    url: str | sa.Engine,
    revision: str = "head",
    create_engine: Callable[[str], sa.Engine] = sa.create_engine,
) -> None:
    """Bring the schema at ``url`` up to ``revision`` of the chain (the newest by default)."""
    from alembic import command

    engine = create_engine(url) if isinstance(url, str) else url
    try:
        with _lock, engine.begin() as connection:
            command.upgrade(alembic_config(script_location, connection), revision)
    finally:
        if isinstance(url, str):
            engine.dispose()
