"""Alembic migrations of the prediction/feedback store (run by ``store.migrate``)."""
