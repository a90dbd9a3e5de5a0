"""The demo's own pieces that need no stack: state directory, data slices, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.demo import sentiment_traffic as demo_data
from driftloop.demo.scenario import DemoReport
from driftloop.demo.sources import traffic_source
from driftloop.demo.state import MARKER, DemoSetupError, prepare_state_dir
from driftloop.demo.tabular_traffic import UNIT_CHANGE

DRIFTLOOP = str(Path(sys.executable).parent / "driftloop")


def test_state_dir_is_recreated_but_a_foreign_directory_is_refused(tmp_path):
    state = prepare_state_dir(tmp_path / "demo")
    (state / "leftover").write_text("from the last run")
    again = prepare_state_dir(tmp_path / "demo")
    assert (again / MARKER).is_file() and not (again / "leftover").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(DemoSetupError, match="not created by the demo"):
        prepare_state_dir(foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_cli_refuses_a_foreign_state_dir_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    result = subprocess.run(
        [DRIFTLOOP, "demo", "sentiment", "--quick", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--state-dir" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_demo_data_slices_are_disjoint(tmp_path):
    import pandas as pd

    prepared = demo_data.prepare(tmp_path, demo_data.QUICK, seed=3)
    v1 = pd.read_csv(prepared.train_source)
    since = pd.read_csv(prepared.retrain_source)
    assert len(v1) == demo_data.QUICK.train_rows and len(since) == demo_data.QUICK.retrain_rows
    assert set(v1["category"]) == set(since["category"]) == {"fresh", "rotten"}
    held_out = {example.instance for example in prepared.baseline}
    assert not (set(v1["text"]) & set(since["text"]))
    assert not (held_out & (set(v1["text"]) | set(since["text"])))
    assert len(prepared.shifted) == demo_data.QUICK.shifted_requests
    # the shift moves the label prior, not only the vocabulary
    negative = [example.truth == "negative" for example in prepared.shifted]
    assert sum(negative) / len(negative) > 0.6


@pytest.mark.parametrize(("dataset", "kind"), [("penguins", str), ("diabetes", float)])
def test_tabular_demo_traffic_changes_one_column_unit_and_keeps_the_truth(tmp_path, dataset, kind):
    import pandas as pd

    source = traffic_source("tabular", dataset=dataset)
    prepared = source.prepare(tmp_path, quick=True, seed=3)
    v1 = pd.read_csv(prepared.train_source)
    since = pd.read_csv(prepared.retrain_source)
    # the retraining reads v1's rows and the ones labelled since; traffic is neither
    assert set(v1["id"]) < set(since["id"])
    assert prepared.baseline and prepared.shifted
    assert all(isinstance(example.truth, kind) for example in prepared.shifted)
    # exactly one numeric column arrives in another unit; the others are as in the table
    (column,) = {c for c in prepared.shifted[0].instance if c in prepared.describe_shift}
    shifted = pd.DataFrame([example.instance for example in prepared.shifted])
    baseline = pd.DataFrame([example.instance for example in prepared.baseline])
    assert shifted[column].abs().max() <= baseline[column].abs().max() * UNIT_CHANGE * 10
    assert source.plan(quick=True).blueprint.startswith('{"name": "tabular"')


def test_demo_of_a_blueprint_without_traffic_is_one_line():
    result = subprocess.run(
        [DRIFTLOOP, "demo", "nope", "--quick"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "no demo traffic for blueprint 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_report_timings_are_relative_to_the_drift_onset():
    report = DemoReport(drift_onset=100.0, alert_fired=104.0, champion_served=250.5)
    summary = report.to_json()
    assert summary["seconds_after_onset"]["alert_fired"] == 4.0
    assert summary["onset_to_new_champion_s"] == 150.5
    assert DemoReport().to_json()["onset_to_new_champion_s"] is None
