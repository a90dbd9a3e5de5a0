"""Tables from CSV/Parquet (``read_table``), their row ids (``with_ids``), the shipped tables."""

from __future__ import annotations

import gzip
import http.server
import threading
from functools import partial

import numpy as np
import pandas as pd
import pytest

from driftloop.datasets.errors import DatasetValidationError, UnknownDatasetError
from driftloop.datasets.tables import (
    ID_COLUMN,
    SHIPPED_TABLES,
    column_list,
    no_such_column,
    read_table,
    shipped_table,
    with_ids,
)

FRAME = pd.DataFrame(
    {
        "x one": [1.5, None, 3.0, 4.0],
        "colour": ["red", None, "blue", "red"],
        "flag": [True, False, None, True],
        "y": ["a", "b", "a", "b"],
    }
)


# --- read_table ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("suffix", "write"),
    [
        (".csv", lambda f, p: f.to_csv(p, index=False)),
        (".csv", lambda f, p: f.to_csv(p, index=False, sep=";")),
        (".tsv", lambda f, p: f.to_csv(p, index=False, sep="\t")),
        (".csv", lambda f, p: f.to_csv(p, index=False, encoding="utf-8-sig")),
        (".csv.gz", lambda f, p: p.write_bytes(gzip.compress(f.to_csv(index=False).encode()))),
        (".parquet", lambda f, p: f.to_parquet(p, index=False)),
        ("", lambda f, p: f.to_parquet(p, index=False)),  # Parquet known by its magic bytes
    ],
)
def test_read_table_formats(tmp_path, suffix, write):
    path = tmp_path / f"t{suffix}"
    write(FRAME, path)
    frame = read_table(path)
    assert list(frame.columns) == ["x one", "colour", "flag", "y"]
    assert len(frame) == 4 and frame["y"].tolist() == ["a", "b", "a", "b"]
    assert frame["x one"].isna().sum() == 1


def test_read_table_trailing_delimiters_do_not_shift_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2,\n3,4,\n")
    assert read_table(path).to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_read_table_strips_names_and_spaces_after_delimiters(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(" a , b\n1, x\n2, y\n")
    frame = read_table(path)
    assert list(frame.columns) == ["a", "b"] and frame["b"].tolist() == ["x", "y"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty: no header and no rows"),
        (b"  \n\n", "is empty"),
        (b"a,b,c\n", "has a header but no rows"),
        ("name,y\ncafé,a\n".encode("latin-1"), r"is not UTF-8 text \(byte 10, line 2\)"),
        (b"a,b\n1,2\n3,4,5,6\n", "is not a readable CSV file"),
        (b"a,b\n1,2,3\n4,5,6\n", "is not a readable CSV file: Length of header"),
        (b"a,a\n1,2\n", None),  # pandas renames a repeated name a.1: readable
        (b"a,,c\n1,2,3\n", None),  # a blank name becomes "Unnamed: 1"
    ],
)
def test_read_table_errors(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    if message is None:
        assert len(read_table(path)) == 1
        return
    with pytest.raises(DatasetValidationError, match=message) as caught:
        read_table(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_read_table_bad_parquet_and_missing_file(tmp_path):
    bad = tmp_path / "t.parquet"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetValidationError, match="is not a readable Parquet file"):
        read_table(bad)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_table(tmp_path / "nope.csv")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines on stderr
        pass


@pytest.fixture
def http_dir(tmp_path):
    handler = partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_read_table_from_a_url(http_dir):
    folder, base = http_dir
    FRAME.to_csv(folder / "t.csv", index=False)
    FRAME.to_parquet(folder / "t.parquet", index=False)
    assert len(read_table(f"{base}/t.csv")) == 4
    assert len(read_table(f"{base}/t.parquet")) == 4
    with pytest.raises(FileNotFoundError, match=r"/missing.csv: HTTP 404"):
        read_table(f"{base}/missing.csv")


# --- ids -----------------------------------------------------------------------------
def test_with_ids_from_a_given_column():
    frame = FRAME.assign(key=["k1", "k2", "k3", "k4"])
    out, how = with_ids(frame, "key")
    assert list(out.columns) == [ID_COLUMN, "x one", "colour", "flag", "y"]
    assert out[ID_COLUMN].tolist() == ["k1", "k2", "k3", "k4"] and how == "ids from column 'key'"


def test_with_ids_rejects_a_bad_given_column():
    with pytest.raises(DatasetValidationError, match=r"--id-column: no column 'kee'"):
        with_ids(FRAME.assign(key=1), "kee")
    with pytest.raises(
        DatasetValidationError,
        match=r"--id-column 'key': 2 of 4 rows repeat an earlier id and 0 are empty",
    ):
        with_ids(FRAME.assign(key=["a", "a", "b", "a"]), "key")
    with pytest.raises(DatasetValidationError, match=r"0 of 4 rows repeat .* and 1 are empty"):
        with_ids(FRAME.assign(key=["a", None, "b", "c"]), "key")


@pytest.mark.parametrize("name", ["id", "user_id", "OrderId", "ID", "row_ID", "Unnamed: 0"])
def test_with_ids_detects_a_unique_id_like_column(name):
    frame = FRAME.copy()
    frame.insert(0, name, [10, 11, 12, 13])  # a left-behind row index comes first
    out, how = with_ids(frame)
    assert out[ID_COLUMN].tolist() == ["10", "11", "12", "13"]
    assert how == f"ids detected in column {name!r}"
    assert name not in out.columns or name == ID_COLUMN


def test_with_ids_hashes_rows_when_no_column_is_unique():
    frame = pd.concat([FRAME, FRAME.head(1)], ignore_index=True).assign(id=[1, 1, 2, 3, 1])
    out, how = with_ids(frame)
    assert how.startswith("ids hashed from row content")
    assert "column 'id' left out (2 of 5 rows repeat a value)" in how
    assert "id" in out.columns and out[ID_COLUMN].is_unique  # a repeated row gets its own id
    assert all(value.startswith("row-") for value in out[ID_COLUMN])
    again, _ = with_ids(frame)
    assert again[ID_COLUMN].tolist() == out[ID_COLUMN].tolist()  # stable
    # an "id" column next to a given id column is left out too
    given, how = with_ids(frame.assign(key=list("abcde")), "key")
    assert "column 'id' left out" in how and list(given.columns).count("id") == 1


def test_column_messages_stay_one_short_line():
    many = [f"c{i}" for i in range(100)]
    assert column_list(many).endswith("c29, ... (100 columns)")
    message = no_such_column("--target", "Species", ["island", "species"])
    assert message.startswith("--target: no column 'Species' (did you mean 'species'?)")
    assert "(did you mean" not in no_such_column("--target", "zzz", ["island"])


# --- shipped tables ------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SHIPPED_TABLES))
def test_shipped_tables(name):
    frame, target = shipped_table(name)
    assert target in frame.columns and len(frame) > 100
    out, _ = with_ids(frame)
    assert out[ID_COLUMN].is_unique and len(out) == len(frame)


def test_unknown_shipped_table():
    with pytest.raises(UnknownDatasetError, match="unknown table 'nope'; shipped tables: "):
        shipped_table("nope")


def test_hashing_many_rows_is_quick():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=20_000), "b": rng.choice(["x", "y"], 20_000)})
    out, _ = with_ids(frame)
    assert out[ID_COLUMN].is_unique
