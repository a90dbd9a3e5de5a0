"""The time split scheme: train before val before test, gaps, ties, recorded and read back."""

from __future__ import annotations

import pandas as pd
import pytest

from driftloop.training.split_scheme import (
    SplitScheme,
    SplitSchemeError,
    TimeSplitScheme,
    parse_scheme,
)
from driftloop.training.splits import split_file, split_frame_in_time


def _daily(n=100, start="2020-01-01"):
    dates = pd.bdate_range(start, periods=n)  # trading days: weekends are gaps
    return pd.DataFrame({"id": dates.strftime("%Y-%m-%d"), "date": dates.strftime("%Y-%m-%d"),
                         "value": range(n)})  # fmt: skip


def test_time_split_orders_splits_leaves_gaps_and_records_the_first_test_time():
    frame = _daily(100).sample(frac=1.0, random_state=0)  # file order does not matter
    splits = split_frame_in_time(frame, TimeSplitScheme("date", test=20, val=10, gap=5))
    assert splits.sizes() == {"train": 60, "val": 10, "test": 20}
    assert list(splits.train["value"]) == list(range(60))
    assert list(splits.val["value"]) == list(range(65, 75))
    assert list(splits.test["value"]) == list(range(80, 100))
    first_test = splits.test["date"].iloc[0]
    assert str(splits.scheme) == f"time/v1 column=date test=20 val=10 gap=5 test_from={first_test}"
    assert parse_scheme(str(splits.scheme)) == splits.scheme
    # a model trained under it saw every row before the first test day, the gaps included
    seen = splits.scheme.seen_rows(_daily(110))
    assert seen.sum() == 80 and not seen[80:].any()


def test_fractions_and_numeric_times_and_ties_join_the_later_split():
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(10)],
                          "ts": [1, 2, 3, 4, 5, 6, 7, 7, 8, 9]})  # fmt: skip
    splits = split_frame_in_time(frame, TimeSplitScheme("ts", test=0.2, val=0.1))
    # the last two rows are test; the one val row shares time 7 with a train row: both val
    assert list(splits.test["ts"]) == [8, 9]
    assert list(splits.val["ts"]) == [7, 7]
    assert len(splits.train) == 6
    assert splits.scheme.test_from == "8.0"
    assert list(splits.scheme.seen_rows(pd.DataFrame({"ts": [7.5, 8, 12]}))) == [True, False, False]


def test_time_split_errors_name_the_column_and_the_sizes():
    with pytest.raises(ValueError, match=r"30 rows ordered by 'date' leave none for training"):
        split_frame_in_time(_daily(30), TimeSplitScheme("date", test=20, val=10, gap=5))
    bad = _daily(30)
    bad.loc[3, "date"] = "not a day"
    with pytest.raises(SplitSchemeError, match=r"time column 'date': 1 of 30 rows .*'not a day'"):
        split_frame_in_time(bad, TimeSplitScheme("date", test=5, val=5))
    # no time at all (a feedback row whose request named no date): left out and counted
    undated = _daily(40)
    undated.loc[[5, 6], "date"] = ["", None]
    splits = split_frame_in_time(undated, TimeSplitScheme("date", test=5, val=5))
    assert splits.untimed_rows == 2 and sum(splits.sizes().values()) == 38
    with pytest.raises(SplitSchemeError, match="no time column 'when'"):
        split_frame_in_time(_daily(30), TimeSplitScheme("when"))
    with pytest.raises(SplitSchemeError, match=r"test \(2.5\) must be a fraction"):
        TimeSplitScheme("date", test=2.5)
    with pytest.raises(SplitSchemeError, match="unknown split scheme"):
        parse_scheme("time/v1 column=date")


def test_parse_scheme_reads_both_kinds_and_split_file_records_the_time_scheme(tmp_path):
    assert parse_scheme("id-sha256/v1 seed=3 test=0.2 val=0.1") == SplitScheme(3, 0.2, 0.1)
    assert parse_scheme("time/v1 column=my%20time test=0.25 val=7 gap=0") == TimeSplitScheme(
        "my time", 0.25, 7, 0
    )
    _daily(50).to_parquet(tmp_path / "rows.parquet")
    result = split_file(tmp_path / "rows.parquet", tmp_path / "out", label_column=None,
                        scheme=TimeSplitScheme("date", test=10, val=10, gap=2))  # fmt: skip
    assert result["scheme"].startswith("time/v1 column=date test=10 val=10 gap=2 test_from=")
    assert len(pd.read_parquet(tmp_path / "out" / "test.parquet")) == 10


def test_the_gate_reads_a_time_scheme_back_and_keeps_only_rows_after_the_champions_test_start():
    from datetime import UTC, datetime

    from driftloop.lineage import TAG_SPLIT_SCHEME
    from driftloop.registry import VersionInfo
    from driftloop.training.gate import rows_unseen_by

    champion_split = split_frame_in_time(_daily(100), TimeSplitScheme("date", test=20, val=10))
    champion = VersionInfo("m", "1", ["champion"], {TAG_SPLIT_SCHEME: str(champion_split.scheme)},
                           None, "", "READY", datetime.now(UTC))  # fmt: skip
    # retrained on 30 more days: the new test split starts inside the champion's test period
    challenger_split = split_frame_in_time(_daily(130), TimeSplitScheme("date", test=40, val=10))
    rows = rows_unseen_by(champion, challenger_split.test)
    assert rows.known and rows.excluded == 0 and len(rows.frame) == 40
    earlier = split_frame_in_time(_daily(130), TimeSplitScheme("date", test=60, val=10))
    rows = rows_unseen_by(champion, earlier.test)
    assert rows.excluded == 10 and rows.frame["date"].min() == champion_split.scheme.test_from
