"""``driftloop train tabular --data ...``: bad tables stop before the run with one line.

The end-to-end run (slow) trains twice on a generated regression table: the
first version is promoted, the second, no better, is kept.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from driftloop.cli import cli


def table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    colour = rng.choice(["red", "green", "blue"], n)
    amount = 10 * x + 5 * (colour == "red") + rng.normal(0, 1, n)
    return pd.DataFrame(
        {
            "x value": x,
            "colour": colour,
            "flag": rng.random(n) < 0.5,
            "day": (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="D")).strftime(
                "%Y-%m-%d"
            ),
            "id": rng.integers(0, 10, n),  # not unique: not the ids
            "label": np.where(amount > np.median(amount), "high", "low"),
            "amount": amount.round(3),
        }
    )


def train(*args: str):
    return CliRunner().invoke(cli, ["train", "tabular", *args])


def assert_one_line_error(result, *needles: str, home: Path) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("driftloop: error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (home / "pipeline-runs").exists()  # nothing ran
    return lines[0]


@pytest.fixture
def write(tmp_path):
    def write_table(frame: pd.DataFrame, name: str = "t.csv", **options) -> str:
        path = tmp_path / name
        if name.endswith(".parquet"):
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, **options)
        return str(path)

    return write_table


def test_unknown_target_lists_the_columns(home, write):
    line = assert_one_line_error(
        train("--data", write(table()), "--target", "Amount"),
        "--target: no column 'Amount'",
        home=home,
    )
    assert "did you mean 'amount'?" in line and "x value, colour, flag, day" in line


def test_no_target_lists_the_columns(home, write):
    assert_one_line_error(
        train("--data", write(table())),
        "--target: name the column to predict; columns are x value, colour",
        home=home,
    )


def test_missing_target_values(home, write):
    frame = table()
    frame.loc[[3, 7, 9], "amount"] = np.nan
    assert_one_line_error(
        train("--data", write(frame), "--target", "amount"),
        "column 'amount': 3 of 120 rows have no target value",
        home=home,
    )


def test_an_all_missing_target(home, write):
    assert_one_line_error(
        train("--data", write(table().assign(amount=np.nan)), "--target", "amount"),
        "column 'amount': 120 of 120 rows have no target value",
        home=home,
    )


@pytest.mark.parametrize("task", [[], ["--task", "regression"]])
def test_a_constant_numeric_target(home, write, task):
    assert_one_line_error(
        train("--data", write(table(240).assign(amount=3.5)), "--target", "amount", *task),
        "column 'amount': every one of the 240 rows holds 3.5",
        "a constant target leaves nothing to learn",
        home=home,
    )


def test_a_single_class(home, write):
    assert_one_line_error(
        train("--data", write(table().assign(label="high")), "--target", "label"),
        "column 'label': a single class ('high') in 120 rows",
        home=home,
    )


def test_too_few_rows_per_class(home, write):
    frame = table(60).assign(label=[f"c{i % 10}" for i in range(60)])
    assert_one_line_error(
        train("--data", write(frame), "--target", "label"),
        "column 'label': class",
        "'c0' has 6 rows",
        "and 5 more of the 10 classes (60 rows in all)",
        "needs at least 10 rows per class",
        home=home,
    )


def test_too_few_rows_for_validation_and_test(home, write):
    assert_one_line_error(
        train("--data", write(table(60)), "--target", "amount"),
        "the table has 60 rows",
        "use about 200 rows or more",
        home=home,
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "is empty: no header and no rows"),
        (b"amount,x\n", "has a header but no rows"),
        ("x,amount\ncaf\xe9,1\n".encode("latin-1"), "is not UTF-8 text (byte 12, line 2)"),
    ],
)
def test_unreadable_files(home, tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    assert_one_line_error(train("--data", str(path), "--target", "amount"), needle, home=home)


def test_non_numeric_target_for_regression(home, write):
    assert_one_line_error(
        train("--data", write(table()), "--target", "colour", "--task", "regression"),
        "column 'colour': 120 of 120 rows are not finite numbers",
        home=home,
    )


def test_id_column_problems(home, write):
    path = write(table())
    assert_one_line_error(
        train("--data", path, "--target", "amount", "--id-column", "key"),
        "--id-column: no column 'key'",
        home=home,
    )
    assert_one_line_error(
        train("--data", path, "--target", "amount", "--id-column", "id"),
        "--id-column 'id':",
        "of 120 rows repeat an earlier id",
        home=home,
    )
    assert_one_line_error(
        train("--data", path, "--target", "amount", "--id-column", "amount"),
        "--id-column and --target both name 'amount'",
        home=home,
    )


def test_missing_file_and_bad_task(home, tmp_path):
    assert_one_line_error(
        train("--data", str(tmp_path / "nope.csv"), "--target", "amount"),
        "--data: no such file",
        home=home,
    )
    result = train("--data", str(tmp_path / "nope.csv"), "--task", "forecasting")
    assert result.exit_code == 2 and "Invalid value for '--task'" in result.output


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines on stderr
        pass


@pytest.fixture
def http_base(tmp_path):
    handler = partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_that_is_not_there(home, http_base):
    assert_one_line_error(
        train("--data", f"{http_base}/missing.csv", "--target", "amount"),
        "missing.csv: HTTP 404 Not Found",
        home=home,
    )


# --- end to end ----------------------------------------------------------------------
DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))


def _run_cli(*args: str) -> dict:
    result = subprocess.run(
        [DRIFTLOOP, *args], env=dict(os.environ), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_train_a_generated_regression_table_twice(home, tmp_path):
    path = tmp_path / "houses; prices.csv"
    table(240).drop(columns=["label"]).to_csv(path, index=False, sep=";")
    args = ("train", "tabular", "--data", str(path), "--target", "amount", "--model-name", "prices")
    args += ("--candidates", "ridge,random_forest")  # the pipeline is under test, not the search
    first = _run_cli(*args, "--json")
    assert first["version"] == "1" and first["decision"] == "promote"
    assert first["aliases"] == ["champion"] and first["primary_metric"] == "rmse"
    assert first["test_metrics"]["rmse"] < 10  # the target's spread is ~11
    second = _run_cli(*args, "--json")
    assert second["version"] == "2" and second["decision"] == "keep"
    assert "champion" not in second["aliases"]
