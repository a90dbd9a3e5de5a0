"""Foundation acceptance: `driftloop train` runs the whole training pipeline through kfp.local.

Real everything: the Olist sample CSV, MLflow's SQLite registry in a private
home, the candidates, the predictor started by smoke-serve, the gate and the
drift reference. The CLI runs in a subprocess, as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DRIFTLOOP = [str(Path(sys.executable).with_name("driftloop"))]
RUN_TIMEOUT_S = 900


def _driftloop(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DRIFTLOOP, *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _train(olist_sample) -> dict:
    result = _driftloop("train", "sentiment", "--data", str(olist_sample), "--json")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_train_twice_promotes_the_first_and_keeps_the_second(home, olist_sample):
    from driftloop.registry import ModelRegistry

    first = _train(olist_sample)
    assert first["version"] == "1"
    assert first["decision"] == "promote"
    assert first["aliases"] == ["champion"]
    test_f1 = first["test_metrics"]["macro_f1"]
    print(f"\nchampion test macro_f1 on the Olist sample: {test_f1:.4f}")
    print("task timings (s):", json.dumps(first["timings"]))
    assert test_f1 >= 0.90
    assert first["candidates"], "the train step reported no candidates"
    assert first["best_candidate"] in {c["name"] for c in first["candidates"]}
    # every step of the pipeline ran, in order, and was timed
    assert list(first["timings"]) == [
        "ingest",
        "validate",
        "split",
        "train",
        "evaluate",
        "register",
        "smoke-serve",
        "promote-challenger",
        "gate",
        "fit-drift-reference",
        "promote",
    ]

    second = _train(olist_sample)
    assert second["version"] == "2"
    assert second["decision"] == "keep"
    assert "champion" not in second["aliases"]
    assert "promote" not in second["timings"]  # the gate's branch was not taken

    registry = ModelRegistry(os.environ["MLFLOW_TRACKING_URI"])
    assert registry.aliases("sentiment")["champion"] == "1"
    v1, v2 = registry.get_version("sentiment", "1"), registry.get_version("sentiment", "2")
    assert v1.tags["driftloop.decision"] == "promote"
    assert v2.tags["driftloop.decision"] == "keep"
    # identical data and seed: identical lineage, so the second run could not improve
    for tag in ("driftloop.dataset_fingerprint", "driftloop.split.test_fingerprint"):
        assert v1.tags[tag] == v2.tags[tag]
    # a drift reference is fitted for the kept version too (a later promotion needs it)
    assert v1.tags.get("driftloop.drift_reference")
    assert v2.tags.get("driftloop.drift_reference")

    shown = _driftloop("models", "show", "sentiment", timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "promote" in shown.stdout and "keep" in shown.stdout


@pytest.mark.slow
def test_train_reports_a_failing_step_in_one_line(home, tmp_path):
    bad = tmp_path / "reviews.csv"
    # a well-formed Olist file whose scores all map to one class: validation must stop it
    bad.write_text(
        "review_id,order_id,review_score,review_comment_title,review_comment_message,"
        "review_creation_date,review_answer_timestamp\n"
        + "".join(
            f"r{i},o{i},5,,ótimo produto {i},2018-01-0{i % 9 + 1} 00:00:00,"
            f"2018-01-0{i % 9 + 1} 10:00:00\n"
            for i in range(40)
        ),
        encoding="utf-8",
    )
    result = _driftloop("train", "sentiment", "--data", str(bad), timeout=300)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("driftloop: error:")]
    assert len(errors) == 1, result.stderr
    assert "step 'validate' failed" in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nope"],
            "unknown blueprint 'nope'; known blueprints: forecast, recsys, sentiment, tabular, "
            "vision",
        ),
        (["sentiment", "--data", "/no/such/file.csv"], "--data: no such file"),
        (["sentiment", "--dataset", "nope"], "--dataset: unknown dataset 'nope'"),
        (["sentiment", "--label-mapping", "negative"], "--label-mapping:"),
    ],
)
def test_train_rejects_bad_options_before_running(home, args, message):
    result = _driftloop("train", *args, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("driftloop: error:")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (home / "pipeline-runs").exists()
