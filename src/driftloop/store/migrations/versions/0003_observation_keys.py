"""Predictions resolved by observation: ``observation_keys``.

A forecast's ground truth arrives as an observation of a series on a date, not by
request id. Each instance that names what it forecasts gets a row (request id, instance
index, series, target date); ``POST /v1/feedback/observations`` looks predictions up by
(series, target date). Existing predictions named nothing, so the table starts empty.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observation_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id",
            sa.String(128),
            sa.ForeignKey("predictions.request_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("instance", sa.Integer, nullable=False),
        sa.Column("series", sa.String(128), nullable=False),
        sa.Column("target_date", sa.String(10), nullable=False),
    )
    op.create_index(
        "ix_observation_keys_series_date", "observation_keys", ["series", "target_date"]
    )
    op.create_index("ix_observation_keys_request", "observation_keys", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_observation_keys_request", table_name="observation_keys")
    op.drop_index("ix_observation_keys_series_date", table_name="observation_keys")
    op.drop_table("observation_keys")
