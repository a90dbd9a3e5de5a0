"""Tables of the prediction/feedback store (SQLAlchemy Core).

The Alembic migrations in ``migrations/versions`` create exactly these tables;
this module is what the code queries against.

The store is not tied to text classifiers: ``predictions.inputs`` and
``predictions.outputs`` are JSON lists with one entry per instance of the request
(any JSON: a text, a table row, an image summary, a price window, a user id; a
class with its probabilities, a number, a ranked list of item ids).
``predictions.label``/``confidence`` are filled only where the first instance's
answer is a class (NULL for a regression, a ranking, ...). ``feedback.value`` is
the ground truth as JSON (a label string, a number, a list of item ids or an
object); ``feedback.label`` (a class the truth names) and ``feedback.correct``
(a verdict on the prediction) are kept for the classifier readers.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("inputs", sa.JSON, nullable=False),  # a list: any JSON per instance
    sa.Column("outputs", sa.JSON, nullable=False),  # a list: any JSON per instance
    sa.Column("label", sa.String(256), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Index("ix_predictions_model_created", "model_name", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "request_id",
        sa.String(128),
        sa.ForeignKey("predictions.request_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("label", sa.String(256), nullable=True),
    sa.Column("correct", sa.Boolean, nullable=True),
    # the ground truth (revision 0002); SQL NULL when the feedback names none
    sa.Column("value", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_feedback_request_created", "request_id", "created_at"),
)

# What a prediction's instance is about when its truth is observed later by name
# (revision 0003): a forecast of ``series`` for the day ``target_date`` (ISO text). An
# observation of that series and day resolves every prediction that names it. Rows exist
# only for instances that named one (other blueprints write none).
observation_keys = sa.Table(
    "observation_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "request_id",
        sa.String(128),
        sa.ForeignKey("predictions.request_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("instance", sa.Integer, nullable=False),  # index in the request's instances
    sa.Column("series", sa.String(128), nullable=False),
    sa.Column("target_date", sa.String(10), nullable=False),
    sa.Index("ix_observation_keys_series_date", "series", "target_date"),
    sa.Index("ix_observation_keys_request", "request_id"),
)
