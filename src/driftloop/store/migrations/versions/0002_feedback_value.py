"""The store keeps JSON, not text-classifier columns: ``feedback.value``.

``feedback.value`` (JSON) is the ground truth of a feedback row: a label string,
a number, a list of item ids or an object. Existing rows get their ``label`` as
their value. ``feedback.label`` and ``feedback.correct`` stay (nullable), so the
readers written for the text classifier keep working.

``predictions.label`` and ``predictions.confidence`` must be nullable (a
regression prediction has neither); revision 0001 already created them so, and
this revision only relaxes them where a database says otherwise. The
per-instance input summaries and outputs stay in the JSON ``inputs`` and
``outputs`` columns, which hold any JSON per instance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PREDICTION_COLUMNS = {"label": sa.String(256), "confidence": sa.Float()}


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("value", sa.JSON(none_as_null=True), nullable=True))
    # the label as a JSON string; NULL stays NULL (feedback that only said right/wrong)
    if bind.dialect.name == "sqlite":
        backfill = "UPDATE feedback SET value = json_quote(label) WHERE label IS NOT NULL"
    elif bind.dialect.name == "postgresql":
        backfill = "UPDATE feedback SET value = to_json(label) WHERE label IS NOT NULL"
    else:
        backfill = None
    if backfill is not None:
        op.execute(backfill)
    else:  # any other backend: through SQLAlchemy's own JSON encoding
        table = sa.table(
            "feedback",
            sa.column("id", sa.Integer),
            sa.column("label", sa.String),
            sa.column("value", sa.JSON),
        )
        rows = bind.execute(sa.select(table.c.id, table.c.label).where(table.c.label.is_not(None)))
        for row_id, label in rows.all():
            bind.execute(table.update().where(table.c.id == row_id).values(value=label))

    # Only where a column is NOT NULL (0001 made both nullable). On SQLite the alter
    # rebuilds the predictions table, and dropping the old one cascades to feedback
    # (foreign keys are on and cannot be turned off inside the migration's
    # transaction), so the feedback rows are kept aside and put back.
    columns = {c["name"]: c for c in sa.inspect(bind).get_columns("predictions")}
    strict = [name for name in _PREDICTION_COLUMNS if not columns[name]["nullable"]]
    if not strict:
        return
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE _driftloop_feedback_kept AS SELECT * FROM feedback")
    with op.batch_alter_table("predictions") as batch:
        for name in strict:
            batch.alter_column(name, existing_type=_PREDICTION_COLUMNS[name], nullable=True)
    if sqlite:
        op.execute("DELETE FROM feedback")
        op.execute("INSERT INTO feedback SELECT * FROM _driftloop_feedback_kept")
        op.execute("DROP TABLE _driftloop_feedback_kept")


def downgrade() -> None:
    # predictions.label/confidence stay nullable: 0001 made them so.
    # A value that is not a label (a number, a list, an object) is lost with the column.
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("value")
