"""The demo's own pieces that need no stack: state directory, data slices, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.demo import data as demo_data
from driftloop.demo.sentiment import MARKER, DemoReport, DemoSetupError, prepare_state_dir

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
    v1 = pd.read_csv(prepared.train_csv)
    since = pd.read_csv(prepared.retrain_csv)
    assert len(v1) == demo_data.QUICK.train_rows and len(since) == demo_data.QUICK.retrain_rows
    assert set(v1["category"]) == set(since["category"]) == {"fresh", "rotten"}
    held_out = set(prepared.baseline["text"])
    assert not (set(v1["text"]) & set(since["text"]))
    assert not (held_out & (set(v1["text"]) | set(since["text"])))
    assert len(prepared.shifted) == demo_data.QUICK.shifted_requests
    # the shift moves the label prior, not only the vocabulary
    assert (prepared.shifted["label"] == "negative").mean() > 0.6


def test_report_timings_are_relative_to_the_drift_onset():
    report = DemoReport(drift_onset=100.0, alert_fired=104.0, champion_served=250.5)
    summary = report.to_json()
    assert summary["seconds_after_onset"]["alert_fired"] == 4.0
    assert summary["onset_to_new_champion_s"] == 150.5
    assert DemoReport().to_json()["onset_to_new_champion_s"] is None
