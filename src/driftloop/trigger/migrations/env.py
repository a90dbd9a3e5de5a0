"""Alembic environment of the trigger ledger: the connection comes from ``ledger.migrate``.

Its own version table, so the ledger can share a database with the prediction
store (whose chain keeps the default ``alembic_version``).
"""

from alembic import context

from driftloop.trigger.ledger import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
