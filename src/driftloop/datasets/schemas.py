"""Declared schemas (pandera) and the one place that turns failures into messages.

Two schemas matter: the raw Olist reviews file as Olist publishes it, and the
canonical labelled-text frame every loader returns (``id``, ``text``,
``label`` and an optional ``timestamp``). A failure becomes a
:class:`DatasetValidationError` whose message names each bad column and how
many rows break it, e.g. ``column 'review_score': 12 rows outside 1..5``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa

from driftloop.datasets.errors import DatasetValidationError

CANONICAL_COLUMNS = ("id", "text", "label")
OPTIONAL_COLUMNS = ("timestamp",)

# pandera's built-in check names, said the way a user would say them
_READABLE_CHECKS = {
    "not_nullable": "empty (null)",
    "field_uniqueness": "duplicated",
    "column_in_dataframe": "missing",
}


def _parseable_dates(series: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(series, errors="coerce", format="mixed")
    return parsed.notna() | series.isna()


def _integer_valued(series: pd.Series) -> pd.Series:
    number = pd.to_numeric(series, errors="coerce")
    return number.notna() & (number % 1 == 0)


def _within(low: int, high: int):
    def check(series: pd.Series) -> pd.Series:
        number = pd.to_numeric(series, errors="coerce")
        # non-numbers are reported once, by the "not an integer" check
        return number.isna() | number.between(low, high)

    return check


def _non_blank(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().str.len().fillna(0) > 0


OLIST_RAW_SCHEMA = pa.DataFrameSchema(
    {
        "review_id": pa.Column(object, nullable=False),
        "order_id": pa.Column(object, nullable=True),
        "review_score": pa.Column(
            object,
            [
                pa.Check(_integer_valued, error="not an integer"),
                pa.Check(_within(1, 5), error="outside 1..5"),
            ],
            nullable=False,
        ),
        "review_comment_title": pa.Column(object, nullable=True),
        "review_comment_message": pa.Column(object, nullable=True),
        "review_creation_date": pa.Column(
            object, pa.Check(_parseable_dates, error="not a parseable date"), nullable=True
        ),
        "review_answer_timestamp": pa.Column(
            object, pa.Check(_parseable_dates, error="not a parseable date"), nullable=True
        ),
    },
    strict=False,
    name="olist_order_reviews",
)


def labelled_text_schema(labels: Iterable[str] | None = None) -> pa.DataFrameSchema:
    label_checks = [pa.Check(_non_blank, error="empty label")]
    if labels is not None:
        allowed = sorted(set(labels))
        label_checks.append(pa.Check.isin(allowed, error=f"label not in {allowed}"))
    return pa.DataFrameSchema(
        {
            "id": pa.Column(
                str, pa.Check(_non_blank, error="empty id"), nullable=False, unique=True
            ),
            "text": pa.Column(str, pa.Check(_non_blank, error="empty text"), nullable=False),
            "label": pa.Column(str, label_checks, nullable=False),
            "timestamp": pa.Column(
                None,
                pa.Check(_parseable_dates, error="not a parseable date"),
                nullable=True,
                required=False,
            ),
        },
        strict=False,
        name="labelled_text",
    )


def describe_failures(failure_cases: pd.DataFrame) -> dict[str, str]:
    """column -> "N rows <problem>[, M rows <problem>]" from pandera's failure table."""
    problems: dict[str, list[str]] = {}
    for (column, check), cases in failure_cases.groupby(
        [failure_cases["column"].fillna(""), failure_cases["check"].astype(str)], sort=True
    ):
        if check == "column_in_dataframe":
            for missing in cases["failure_case"].astype(str).unique():
                problems.setdefault(missing, []).append("missing")
            continue
        rows = cases["index"].dropna().nunique() or len(cases)
        what = _READABLE_CHECKS.get(check)
        if what is None and check.startswith("dtype("):
            what = f"of the wrong type (expected {check[len('dtype(') : -1]})"
        what = what or check
        problems.setdefault(column or "<frame>", []).append(
            f"{rows} row{'s' if rows != 1 else ''} {what}"
        )
    return {column: ", ".join(items) for column, items in problems.items()}


def run_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """Validate ``frame``; raise one DatasetValidationError naming every bad column."""
    try:
        return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems = describe_failures(exc.failure_cases)
        detail = "; ".join(
            text if column == "<frame>" else f"column {column!r}: {text}"
            for column, text in problems.items()
        )
        raise DatasetValidationError(f"{what} failed validation: {detail}", problems) from None


def validate_frame(
    frame: pd.DataFrame, labels: Iterable[str] | None = None, *, what: str = "dataset"
) -> pd.DataFrame:
    """Check a canonical labelled-text frame (unique ids, non-empty texts, known labels)."""
    if not isinstance(frame, pd.DataFrame):
        raise DatasetValidationError(f"{what} is a {type(frame).__name__}, not a pandas DataFrame")
    if frame.empty:
        raise DatasetValidationError(f"{what} has no rows")
    return run_schema(labelled_text_schema(labels), frame, what)


def validate_olist_raw(frame: pd.DataFrame, what: str = "Olist reviews file") -> pd.DataFrame:
    return run_schema(OLIST_RAW_SCHEMA, frame, what)
