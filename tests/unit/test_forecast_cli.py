"""The forecast commands' edges in-process: bad series and params are one error line before
any run starts (each check itself: test_forecast_data.py); ``driftloop sample forecast``
prints real windows as a v1 body."""

from __future__ import annotations

import json

import pytest

from driftloop.cli import main


@pytest.mark.parametrize(
    ("rows", "args", "named"),
    [
        ("2020-01-03,2\n2020-01-02,2\n", [], "--date-column 'Date': dates are not in order"),
        ("2020-01-02,2\n", [], "has 1 days; a window of 60"),
        ("2020-01-02,2\n", ["--param", "hidden_size=big"], "--param hidden_size: expected a"),
        ("2020-01-02,2\n", ["--param", "hiden_size=8"], "--param hiden_size: not a forecast"),
    ],
)
def test_train_forecast_names_the_problem_in_one_line(tmp_path, capsys, rows, args, named):
    path = tmp_path / "prices.csv"
    path.write_text("Date,Close\n" + rows)
    assert main(["train", "forecast", "--data", str(path), *args]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("driftloop: error: ") and named in error[0]


def test_sample_prints_real_windows_as_a_v1_body(capsys):
    assert main(["sample", "forecast", "--count", "2", "--seed", "3"]) == 0
    captured = capsys.readouterr()
    instances = json.loads(captured.out)["instances"]
    assert len(instances) == 2 and all(len(i["last_prices"]) == 60 for i in instances)
    assert all(p > 0 for i in instances for p in i["last_prices"])
    # each window's date and true next close on stderr
    assert [line.split(":")[0][:5] for line in captured.err.strip().splitlines()] == ["id 20"] * 2
