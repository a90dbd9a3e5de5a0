"""Alembic migrations of the trigger ledger (version table ``driftloop_ledger_alembic_version``)."""
