"""Splits and fingerprints: seeded, stratified, order-independent, content-sensitive."""

from __future__ import annotations

import pandas as pd
import pytest

from driftloop.training.splits import fingerprint, split_file, split_frame


def _frame(n_pos=60, n_neg=40):
    rows = [(f"p{i}", f"good text {i}", "positive") for i in range(n_pos)]
    rows += [(f"n{i}", f"bad text {i}", "negative") for i in range(n_neg)]
    return pd.DataFrame(rows, columns=["id", "text", "label"])


def test_fingerprint_ignores_row_and_column_order_and_index():
    frame = _frame()
    shuffled = frame.sample(frac=1.0, random_state=3)[["label", "text", "id"]]
    assert fingerprint(frame) == fingerprint(shuffled)
    assert fingerprint(frame) == fingerprint(frame.set_index(frame.index + 100))


def test_fingerprint_changes_with_content():
    frame = _frame()
    base = fingerprint(frame)
    edited = frame.copy()
    edited.loc[5, "text"] = "good text 5!"
    relabelled = frame.copy()
    relabelled.loc[5, "label"] = "negative"
    renamed = frame.copy()
    renamed.loc[5, "id"] = "p5-b"
    assert (
        len(
            {
                base,
                fingerprint(edited),
                fingerprint(relabelled),
                fingerprint(renamed),
                fingerprint(frame.iloc[1:]),
                fingerprint(pd.concat([frame, frame.iloc[:1]])),
            }
        )
        == 6
    )
    # a missing value is not the string "nan"
    with_nan = frame.astype(object)
    with_nan.loc[0, "text"] = None
    as_text = frame.copy()
    as_text.loc[0, "text"] = "nan"
    assert fingerprint(with_nan) != fingerprint(as_text)


def test_split_is_stratified_seeded_and_order_independent():
    frame = _frame(600, 400)
    splits = split_frame(frame, seed=1)
    assert splits.sizes() == {"train": 700, "val": 100, "test": 200}
    for part in (splits.train, splits.val, splits.test):
        assert part["label"].value_counts(normalize=True)["positive"] == pytest.approx(
            0.6, abs=0.01
        )
    ids = [set(part["id"]) for part in (splits.train, splits.val, splits.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(frame["id"])

    shuffled = split_frame(frame.sample(frac=1.0, random_state=9), seed=1)
    assert shuffled.fingerprints == splits.fingerprints
    assert split_frame(frame, seed=2).fingerprints["test"] != splits.fingerprints["test"]
    assert splits.fingerprints["test"] == fingerprint(splits.test)


def test_too_few_rows_in_a_class_names_the_class():
    frame = pd.concat(
        [
            _frame(50, 50),
            pd.DataFrame({"id": ["u1", "u2"], "text": ["x", "y"], "label": ["neutral", "neutral"]}),
        ]
    )
    with pytest.raises(ValueError, match=r"class 'neutral' has 2 rows.*at least 10 rows per class"):
        split_frame(frame)
    with pytest.raises(ValueError, match="at least two classes"):
        split_frame(_frame(50, 0))
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_frame(_frame(), test_size=0.6, val_size=0.5)


def test_split_file_writes_parquet_and_returns_fingerprints(tmp_path):
    frame = _frame(200, 100)
    frame.to_parquet(tmp_path / "data.parquet")
    into_folder = split_file(tmp_path / "data.parquet", tmp_path / "splits", seed=5)
    assert set(into_folder) == {"dataset", "train", "val", "test"}
    assert into_folder["dataset"] == fingerprint(frame)
    for name in ("train", "val", "test"):
        assert (
            fingerprint(pd.read_parquet(tmp_path / "splits" / f"{name}.parquet"))
            == into_folder[name]
        )

    paths = {name: tmp_path / "kfp" / name / "data" for name in ("train", "val", "test")}
    into_paths = split_file(tmp_path / "data.parquet", paths, seed=5)
    assert into_paths == into_folder
    assert all(path.is_file() for path in paths.values())
    with pytest.raises(ValueError, match="lacks test"):
        split_file(tmp_path / "data.parquet", {"train": paths["train"], "val": paths["val"]})
