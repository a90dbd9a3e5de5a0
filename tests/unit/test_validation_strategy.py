"""Validation strategy ``auto``: time series -> forward folds, small -> k-fold, big -> holdout."""

from __future__ import annotations

import pandas as pd
import pytest

from driftloop.training.validation import KFOLD_BELOW_ROWS, choose_validation, folds_of, refit_rows
from tests.unit.search_fixtures import SmallTable, small_table, train_val


def test_auto_decides_from_rows_and_time():
    table = SmallTable()
    small = choose_validation("auto", table, 200)
    assert small.strategy == "stratified-kfold" and small.folds == 5
    assert "200" in small.reason and str(KFOLD_BELOW_ROWS) in small.reason
    big = choose_validation("auto", table, KFOLD_BELOW_ROWS)
    assert big.strategy == "holdout" and not big.uses_folds
    timed = choose_validation("auto", SmallTable(time_column="when"), 200)
    assert timed.strategy == "timeseries" and "'when'" in timed.reason


def test_manual_choices_and_their_reasons():
    table = SmallTable()
    assert choose_validation("holdout", table, 100).strategy == "holdout"
    kfold = choose_validation("kfold", table, 5000, preset="medium")
    assert kfold.strategy == "stratified-kfold" and kfold.reason.startswith("preset medium")
    with pytest.raises(ValueError, match="^--validation timeseries: .*time column"):
        choose_validation("timeseries", table, 100)


def test_stratified_folds_cover_train_and_val_once_and_keep_the_class_mix():
    table = SmallTable()
    train, val = train_val(small_table(200))
    folds = folds_of(choose_validation("auto", table, 200), table, train, val, seed=1)
    assert len(folds) == 5
    scored = pd.concat([score for _, score in folds])
    assert sorted(scored["id"]) == sorted(pd.concat([train, val])["id"])
    share = (pd.concat([train, val])["y"] == "yes").mean()
    for fit, score in folds:
        assert not set(fit["id"]) & set(score["id"])
        assert abs((score["y"] == "yes").mean() - share) < 0.06
    assert len(refit_rows(choose_validation("kfold", table, 200), train, val)) == 200
    assert refit_rows(choose_validation("holdout", table, 200), train, val) is train


def test_time_series_folds_never_score_on_the_past():
    table = SmallTable(time_column="when")
    frame = small_table(120)
    frame["when"] = pd.date_range("2026-01-01", periods=120, freq="D").astype(str)
    frame = frame.sample(frac=1.0, random_state=3)  # the split hands rows over unordered
    train, val = train_val(frame)
    folds = folds_of(choose_validation("auto", table, 120), table, train, val, seed=0)
    assert len(folds) == 5
    for fit, score in folds:
        assert pd.to_datetime(fit["when"]).max() < pd.to_datetime(score["when"]).min()


def test_kfold_with_a_class_smaller_than_the_folds_names_it():
    table = SmallTable()
    frame = small_table(60)
    frame.loc[frame.index[:3], "y"] = "rare"
    train, val = train_val(frame)
    with pytest.raises(ValueError, match="'rare' has 3 .*5 folds"):
        folds_of(choose_validation("kfold", table, 60), table, train, val, seed=0)


def test_preset_best_refits_a_holdout_winner_on_train_and_validation():
    table = SmallTable()
    best = choose_validation("auto", table, 5000, preset="best")
    assert best.strategy == "holdout-refit" and not best.uses_folds and best.refits_on_all
    assert best.reason.endswith("the winner refit on train + validation")
    train, val = train_val(small_table(200))
    assert len(refit_rows(best, train, val)) == 200
    # a preset that does not refit keeps the plain holdout; folds refit whatever the preset
    assert choose_validation("auto", table, 5000, preset="medium").strategy == "holdout"
    assert choose_validation("auto", table, 200, preset="best").strategy == "stratified-kfold"
    # a holdout asked for by hand is a holdout
    assert choose_validation("holdout", table, 5000).strategy == "holdout"


def test_a_holdout_refit_leaves_the_validation_rows_out_of_the_drift_reference():
    from driftloop.lineage import TAG_VALIDATION, split_fingerprint_tag
    from driftloop.monitor.reference import MIN_ROWS, _unseen_parts
    from driftloop.training.splits import fingerprint

    frame = small_table(MIN_ROWS + 30)
    val, test = frame.iloc[:30], frame.iloc[30:]
    strategy = choose_validation("auto", SmallTable(), 5000, preset="best").strategy
    tags = {split_fingerprint_tag("val"): fingerprint(val), TAG_VALIDATION: strategy}
    assert _unseen_parts([val, test], ["val", "test"], tags)[1] == ["test"]
