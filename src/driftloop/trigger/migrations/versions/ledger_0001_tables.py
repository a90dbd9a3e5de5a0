"""The trigger ledger's tables: seen alerts, decisions, runs.

Before this chain the ledger created its tables itself (``metadata.create_all``);
a ledger database made that way already has them, so a table that exists is kept
as it is (with its rows) and the database is only stamped with this revision.

Revision ID: ledger_0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> dict[str, tuple]:
    return {
        "trigger_seen_alerts": (
            sa.Column("fingerprint", sa.String(128), primary_key=True),
            sa.Column("starts_at", sa.String(64), primary_key=True),
            sa.Column("run_id", sa.String(128)),
            sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        ),
        "trigger_decisions": (
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("model", sa.String(256)),
            sa.Column("alertname", sa.String(256)),
            sa.Column("alert_status", sa.String(16)),
            sa.Column("fingerprint", sa.String(128)),
            sa.Column("starts_at", sa.String(64)),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("run_id", sa.String(128)),
            sa.Column("labels", sa.Text, nullable=False),
        ),
        "trigger_runs": (
            sa.Column("run_id", sa.String(128), primary_key=True),
            sa.Column("model", sa.String(256), nullable=False),
            sa.Column("reason", sa.String(256), nullable=False),
            sa.Column("launcher", sa.String(32), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True)),
            sa.Column("duration_s", sa.Float),
            sa.Column("pid", sa.Integer),
            sa.Column("external_id", sa.String(256)),
            sa.Column("outputs", sa.Text),
            sa.Column("error", sa.Text),
        ),
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in _tables().items():
        if name not in existing:
            op.create_table(name, *columns)


def downgrade() -> None:
    for name in reversed(list(_tables())):
        op.drop_table(name)
