"""Connector for Olist's ``olist_order_reviews_dataset.csv`` (path or http(s) URL).

A review's text is its comment title and message joined. Reviews without a
comment message are dropped (the stars alone carry no text to learn from);
``include_title_only=True`` keeps reviews that have only a title. Olist
repeats a review_id when one review covers several orders: the copies are
collapsed deterministically (the first after sorting on id, answer time,
order id and text), so the file's row order never changes the result.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftloop.datasets.labels import OLIST_DEFAULT, OLIST_WITH_NEUTRAL, LabelMapping
from driftloop.datasets.registry import register_dataset
from driftloop.datasets.schemas import validate_olist_raw
from driftloop.datasets.sources import is_url, open_source

OLIST_FILENAME = "olist_order_reviews_dataset.csv"


def read_olist_raw(source: str | Path, *, timeout: float = 60.0) -> pd.DataFrame:
    """The raw reviews file, validated against Olist's published columns."""
    if not is_url(source) and Path(source).expanduser().is_dir():
        source = Path(source).expanduser() / OLIST_FILENAME
    try:
        raw = pd.read_csv(open_source(source, timeout=timeout), dtype=str, keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        from driftloop.datasets.errors import DatasetValidationError

        raise DatasetValidationError(f"{source} is not a readable CSV file: {exc}") from None
    return validate_olist_raw(raw, what=f"Olist reviews file {source}")


def _clean(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.strip()


def review_texts(raw: pd.DataFrame, *, include_title_only: bool = False) -> pd.DataFrame:
    """Rows that carry text, with a ``text`` column (title + message)."""
    title = _clean(raw["review_comment_title"])
    message = _clean(raw["review_comment_message"])
    keep = message != ""
    if include_title_only:
        keep |= title != ""
    text = (title + " " + message).str.strip()
    return raw.assign(text=text)[keep]


def olist_reviews(
    raw: pd.DataFrame,
    label_mapping: LabelMapping | str | dict | None = None,
    *,
    neutral: bool = False,
    include_title_only: bool = False,
) -> pd.DataFrame:
    """Canonical frame (id, text, label, timestamp) from a validated raw frame."""
    mapping = LabelMapping.coerce(label_mapping, OLIST_WITH_NEUTRAL if neutral else OLIST_DEFAULT)
    texted = review_texts(raw, include_title_only=include_title_only)
    ordered = texted.sort_values(
        ["review_id", "review_answer_timestamp", "order_id", "text"],
        na_position="last",
        kind="mergesort",
    )
    unique = ordered.drop_duplicates("review_id", keep="first")
    score = pd.to_numeric(unique["review_score"]).astype(int)
    frame = pd.DataFrame(
        {
            "id": unique["review_id"].astype(str),
            "text": unique["text"],
            "label": mapping.apply(score).astype(object),
            "timestamp": pd.to_datetime(
                unique["review_creation_date"], errors="coerce", format="mixed"
            ),
        }
    )
    labelled = frame[frame["label"].notna()].reset_index(drop=True)
    labelled.attrs["source_stats"] = {
        "rows_read": int(len(raw)),
        "rows_with_text": int(len(texted)),
        "duplicate_ids_dropped": int(len(texted) - len(unique)),
        "unmapped_dropped": int(len(unique) - len(labelled)),
        "label_mapping": str(mapping),
    }
    return labelled


@register_dataset(
    "olist-reviews",
    description="Olist order reviews (PT-BR); source = path or http(s) URL of the CSV",
    needs_source=True,
)
def load_olist_reviews(
    source: str | Path,
    label_mapping: LabelMapping | str | dict | None = None,
    *,
    neutral: bool = False,
    include_title_only: bool = False,
    timeout: float = 60.0,
) -> pd.DataFrame:
    raw = read_olist_raw(source, timeout=timeout)
    return olist_reviews(raw, label_mapping, neutral=neutral, include_title_only=include_title_only)
