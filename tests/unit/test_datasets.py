"""Datasets: label mappings, the Olist connector (file and URL), shipped corpora, validation."""

from __future__ import annotations

import functools
import http.server
import threading

import pandas as pd
import pytest

from driftloop.datasets import (
    DatasetValidationError,
    LabelMapping,
    UnknownDatasetError,
    ingest_to,
    list_datasets,
    load_dataset,
    read_frame,
    validate_file,
    validate_frame,
)
from driftloop.datasets.olist import read_olist_raw, review_texts

OLIST_COLUMNS = [
    "review_id",
    "order_id",
    "review_score",
    "review_comment_title",
    "review_comment_message",
    "review_creation_date",
    "review_answer_timestamp",
]


# --- label mappings (code) -------------------------------------------------------
def test_label_mapping_parses_the_cli_string():
    mapping = LabelMapping.parse("negative=1,2; positive=4,5")
    assert mapping.labels == ("negative", "positive")
    assert mapping.lookup() == {"1": "negative", "2": "negative", "4": "positive", "5": "positive"}
    mapped = mapping.apply(pd.Series([1, 2, 3, 4, 5.0, None]))
    assert mapped.tolist()[:2] == ["negative", "negative"]
    assert pd.isna(mapped.iloc[2]) and pd.isna(mapped.iloc[5])
    assert mapped.iloc[4] == "positive"  # 5.0 read from a float column is score 5


def test_label_mapping_from_both_dict_shapes_and_round_trip():
    by_label = LabelMapping.from_dict({"negative": [1, 2], "neutral": [3], "positive": [4, 5]})
    by_raw = LabelMapping.from_dict(
        {1: "negative", 2: "negative", 3: "neutral", 4: "positive", 5: "positive"}
    )
    assert by_label == by_raw
    assert LabelMapping.parse(str(by_label)) == by_label


@pytest.mark.parametrize(
    "text, message",
    [
        ("negative 1,2", "no '='"),
        ("negative=1,2;positive=2,5", "maps to both"),
        ("", "empty"),
        ("negative=", "no raw values"),
    ],
)
def test_bad_label_mapping_says_why(text, message):
    with pytest.raises(ValueError, match=message):
        LabelMapping.parse(text)


# --- Olist connector (data) ------------------------------------------------------
def test_olist_sample_loads_with_default_mapping(olist_sample):
    raw = read_olist_raw(olist_sample)
    assert len(raw) == 8225
    assert len(review_texts(raw)) == 4109  # reviews with a comment message, before mapping

    frame = load_dataset("olist-reviews", olist_sample)
    stats = frame.attrs["source_stats"]
    assert stats["rows_with_text"] == 4109
    assert stats["duplicate_ids_dropped"] == 14  # one review shared by several orders
    assert stats["unmapped_dropped"] == 315  # score 3 has no label by default
    assert set(frame["label"]) == {"negative", "positive"}
    assert frame["id"].is_unique and len(frame) == 4109 - 14 - 315
    assert list(frame.columns) == ["id", "text", "label", "timestamp"]
    assert frame["text"].str.strip().str.len().min() > 0
    # title and message are joined
    first = raw[raw["review_id"] == "373cbeecea8286a2b66c97b1b157ec46"].iloc[0]
    row = frame.set_index("id").loc["373cbeecea8286a2b66c97b1b157ec46"]
    assert (
        row["text"]
        == f"{first['review_comment_title'].strip()} {first['review_comment_message'].strip()}"
    )
    assert row["label"] == "negative"


def test_olist_neutral_option_and_custom_mapping(olist_sample):
    with_neutral = load_dataset("olist-reviews", olist_sample, neutral=True)
    assert set(with_neutral["label"]) == {"negative", "neutral", "positive"}
    assert with_neutral.attrs["source_stats"]["unmapped_dropped"] == 0
    only_extremes = load_dataset("olist-reviews", olist_sample, label_mapping="bad=1;good=5")
    assert set(only_extremes["label"]) == {"bad", "good"}


def test_olist_row_order_does_not_change_the_frame(olist_sample, tmp_path):
    shuffled = pd.read_csv(olist_sample, dtype=str).sample(frac=1.0, random_state=7)
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    a = load_dataset("olist-reviews", olist_sample).sort_values("id").reset_index(drop=True)
    b = load_dataset("olist-reviews", path).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def _write_olist(path, rows):
    pd.DataFrame(rows, columns=OLIST_COLUMNS).to_csv(path, index=False)
    return path


def _olist_row(i, score=5, message="bom", created="2018-01-01 00:00:00"):
    return [f"r{i}", f"o{i}", score, None, message, created, "2018-01-02 10:00:00"]


def test_bad_olist_file_names_column_and_row_count(tmp_path):
    rows = [_olist_row(i) for i in range(20)]
    for i in range(12):
        rows[i][2] = 7  # 12 scores outside 1..5
    rows[15][2] = "five"
    rows[16][5] = "not a date"
    rows[17][5] = "2018-13-45"
    path = _write_olist(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetValidationError) as caught:
        load_dataset("olist-reviews", path)
    message = str(caught.value)
    assert "column 'review_score': 1 row not an integer, 12 rows outside 1..5" in message
    assert "column 'review_creation_date': 2 rows not a parseable date" in message
    assert caught.value.problems["review_score"] == "1 row not an integer, 12 rows outside 1..5"


def test_olist_file_missing_a_column(tmp_path):
    frame = pd.DataFrame([_olist_row(1)], columns=OLIST_COLUMNS).drop(columns=["review_score"])
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DatasetValidationError, match="column 'review_score': missing"):
        load_dataset("olist-reviews", tmp_path / "x.csv")


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "olist_order_reviews_dataset.csv"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_dataset("olist-reviews", missing)


def test_olist_needs_a_source():
    with pytest.raises(ValueError, match="needs a source"):
        load_dataset("olist-reviews")


def test_olist_source_may_be_the_folder(tmp_path):
    _write_olist(
        tmp_path / "olist_order_reviews_dataset.csv", [_olist_row(1), _olist_row(2, score=1)]
    )
    assert len(load_dataset("olist-reviews", tmp_path)) == 2


@pytest.fixture
def served_dir(tmp_path):
    """A real http.server on 127.0.0.1 serving tmp_path; shut down afterwards."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_olist_connector_reads_a_url(olist_sample, served_dir):
    folder, base = served_dir
    (folder / "reviews.csv").write_bytes(olist_sample.read_bytes())
    from_url = load_dataset("olist-reviews", f"{base}/reviews.csv", timeout=10)
    from_file = load_dataset("olist-reviews", olist_sample)
    pd.testing.assert_frame_equal(from_url, from_file)
    with pytest.raises(FileNotFoundError, match="404"):
        load_dataset("olist-reviews", f"{base}/missing.csv", timeout=10)


# --- registry and shipped corpora --------------------------------------------------
def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UnknownDatasetError) as caught:
        load_dataset("imdb")
    for name in ("olist-reviews", "sentiment-offline", "sentiment-tweets"):
        assert name in str(caught.value)
    assert set(list_datasets()) >= {"olist-reviews", "sentiment-offline", "sentiment-tweets"}


@pytest.mark.parametrize(
    "name, at_least", [("sentiment-offline", 4000), ("sentiment-tweets", 20000)]
)
def test_shipped_corpora_load_with_both_labels_and_stable_ids(name, at_least):
    first = load_dataset(name)
    assert len(first) >= at_least
    counts = first["label"].value_counts()
    assert set(counts.index) == {"negative", "positive"} and counts.min() > 1000
    assert first["id"].is_unique
    again = load_dataset(name)
    pd.testing.assert_frame_equal(first, again)  # ids are content hashes, same every run


def test_tweets_mapping_can_keep_neutral():
    frame = load_dataset(
        "sentiment-tweets", label_mapping="negative=negative;neutral=neutral;positive=positive"
    )
    assert set(frame["label"]) == {"negative", "neutral", "positive"}


# --- canonical validation and the file-level steps -----------------------------------
def test_validate_frame_names_columns_and_counts():
    frame = pd.DataFrame(
        {
            "id": ["a", "a", "b", "c"],
            "text": ["ok", " ", "fine", "good"],
            "label": ["pos", "neg", "pos", "meh"],
        }
    )
    with pytest.raises(DatasetValidationError) as caught:
        validate_frame(frame, labels=["neg", "pos"])
    problems = caught.value.problems
    assert problems["id"] == "2 rows duplicated"
    assert problems["text"] == "1 row empty text"
    assert "1 row label not in ['neg', 'pos']" in problems["label"]


def test_ingest_then_validate_file(olist_sample, tmp_path):
    summary = ingest_to(tmp_path / "data.parquet", "olist-reviews", olist_sample, limit=500)
    assert summary["rows"] == 500 and sum(summary["labels"].values()) == 500
    assert summary["source_stats"]["rows_with_text"] == 4109
    report = validate_file(tmp_path / "data.parquet", labels=["negative", "positive"])
    assert report["valid"] and report["fingerprint"] == summary["fingerprint"]
    # the same limit picks the same rows
    again = ingest_to(tmp_path / "again.parquet", "olist-reviews", olist_sample, limit=500)
    assert again["fingerprint"] == summary["fingerprint"]

    with pytest.raises(DatasetValidationError, match=r"label not in \['bad', 'good'\]"):
        validate_file(tmp_path / "data.parquet", labels=["bad", "good"])

    one_class = read_frame(tmp_path / "data.parquet").query("label == 'positive'")
    one_class.to_parquet(tmp_path / "one.parquet")
    with pytest.raises(DatasetValidationError, match="column 'label': only one class"):
        validate_file(tmp_path / "one.parquet")
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        validate_file(tmp_path / "missing.parquet")


def test_unreachable_url_is_a_source_error_not_a_hang():
    from driftloop.datasets import DatasetSourceError
    from tests.conftest import free_port

    with pytest.raises(DatasetSourceError, match="could not download http://127.0.0.1"):
        load_dataset("olist-reviews", f"http://127.0.0.1:{free_port()}/reviews.csv", timeout=2)


def test_a_file_that_is_not_csv_is_a_validation_error(tmp_path):
    path = tmp_path / "olist_order_reviews_dataset.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(DatasetValidationError):
        load_dataset("olist-reviews", path)
