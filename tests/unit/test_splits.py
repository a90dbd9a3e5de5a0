"""Splits and fingerprints: by row id, stable across runs, order-independent, content-sensitive."""

from __future__ import annotations

import pandas as pd
import pytest

from driftloop.training.split_scheme import SplitScheme, SplitSchemeError
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


def test_split_fractions_and_classes_are_approximately_stratified_and_order_independent():
    frame = _frame(600, 400)
    splits = split_frame(frame, seed=1)
    sizes = splits.sizes()
    # a hash per id: each size is binomial, so allow four standard deviations
    for name, fraction in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        spread = 4 * (1000 * fraction * (1 - fraction)) ** 0.5
        assert abs(sizes[name] - 1000 * fraction) <= spread, sizes
    for part in (splits.train, splits.val, splits.test):
        spread = 4 * (0.6 * 0.4 / len(part)) ** 0.5
        share = part["label"].value_counts(normalize=True)["positive"]
        assert share == pytest.approx(0.6, abs=spread)
    ids = [set(part["id"]) for part in (splits.train, splits.val, splits.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(frame["id"])

    shuffled = split_frame(frame.sample(frac=1.0, random_state=9), seed=1)
    assert shuffled.fingerprints == splits.fingerprints
    assert split_frame(frame, seed=2).fingerprints["test"] != splits.fingerprints["test"]
    assert splits.fingerprints["test"] == fingerprint(splits.test)
    assert str(splits.scheme) == "id-sha256/v1 seed=1 test=0.2 val=0.1"


def _membership(splits) -> dict[str, str]:
    return {
        row_id: name for name in ("train", "val", "test") for row_id in getattr(splits, name)["id"]
    }


def test_a_row_keeps_its_split_when_rows_are_added_relabelled_or_removed():
    base = _frame(600, 400)
    feedback = pd.DataFrame(
        {
            "id": [f"req-{i}" for i in range(300)],
            "text": [f"feedback {i}" for i in range(300)],
            "label": ["positive", "negative"] * 150,
        }
    )
    relabelled = base.copy()
    relabelled.loc[:50, "label"] = "negative"
    first = _membership(split_frame(base))
    grown = _membership(split_frame(pd.concat([relabelled, feedback]).iloc[40:]))
    alone = _membership(split_frame(feedback))

    assert all(grown[row_id] == first[row_id] for row_id in base["id"].iloc[40:])
    # feedback rows join by their own ids: the same split as when split on their own
    assert all(grown[row_id] == alone[row_id] for row_id in feedback["id"])


def test_a_retrained_test_split_holds_no_row_the_champion_trained_on():
    base = _frame(600, 400)
    champion = split_frame(base)
    extra = _frame(900, 700).assign(id=lambda f: "new-" + f["id"])
    challenger = split_frame(pd.concat([base, extra]))
    seen = set(champion.train["id"]) | set(champion.val["id"])
    assert seen.isdisjoint(challenger.test["id"])
    assert set(champion.test["id"]) <= set(challenger.test["id"])


def test_scheme_round_trips_and_recomputes_what_another_scheme_saw():
    scheme = SplitScheme(seed=7, test_size=0.25, val_size=0.15)
    assert SplitScheme.parse(str(scheme)) == scheme
    ids = [f"row-{i}" for i in range(2000)]
    assigned = scheme.assign(ids)
    assert list(scheme.seen_in_training(ids)) == [name != "test" for name in assigned]
    assert 0.2 < (assigned == "test").mean() < 0.3
    with pytest.raises(SplitSchemeError, match="unknown split scheme 'random'"):
        SplitScheme.parse("random")


def test_duplicate_ids_and_a_class_missing_from_a_split_are_named():
    frame = _frame(60, 40)
    twice = pd.concat([frame, frame.iloc[:2]])
    with pytest.raises(ValueError, match=r"column 'id' has 2 duplicate id\(s\), e.g. 'p0'"):
        split_frame(twice)
    # ten rows of a class pass the count check, yet the hash may leave a split without one
    rare = pd.DataFrame(
        {"id": [f"u{i}" for i in range(10)], "text": ["x"] * 10, "label": ["neutral"] * 10}
    )
    missing = next(
        seed
        for seed in range(200)
        if {"train", "val", "test"} - set(SplitScheme(seed=seed).assign(rare["id"]))
    )
    with pytest.raises(ValueError, match=r"class 'neutral' \(10 rows\) has no row in the"):
        split_frame(pd.concat([frame, rare]), seed=missing)


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
    assert set(into_folder) == {"dataset", "train", "val", "test", "scheme"}
    assert into_folder["scheme"] == "id-sha256/v1 seed=5 test=0.2 val=0.1"
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
