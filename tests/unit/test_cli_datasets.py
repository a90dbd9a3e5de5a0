"""``driftloop datasets list|show`` on a real sqlite MLflow.

The dataset inputs are made here (``mlflow.log_input`` in runs of two
experiments, started at known times, and model versions registered from two of
the runs), so the listing does not depend on what the training pipeline logs.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from driftloop.cli import cli
from driftloop.registry import scoped_tracking_uri

HOUR_MS = 3_600_000
T0_MS = 1_790_000_000_000  # 2026-09-21: a fixed start, an hour between runs


def frame(rows: int, columns: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"x{i}": rng.normal(size=rows) for i in range(columns - 1)}
    data["label"] = rng.choice(["a", "b"], rows)
    return pd.DataFrame(data)


def log_inputs(uri: str, experiment_id: str, start_ms: int, name: str, inputs) -> str:
    """A finished run started at ``start_ms`` that logged ``inputs`` (frame, name, source, context)
    with ``mlflow.log_input``."""
    client = MlflowClient(uri)
    run = client.create_run(experiment_id, start_time=start_ms, run_name=name)
    with scoped_tracking_uri(uri), mlflow.start_run(run_id=run.info.run_id):
        for data, dataset, source, context in inputs:
            logged = mlflow.data.from_pandas(data, source=source, name=dataset, targets="label")
            mlflow.log_input(logged, context=context)
    return run.info.run_id


def register(uri: str, name: str, run_id: str) -> None:
    client = MlflowClient(uri, registry_uri=uri)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    client.create_model_version(name, source, run_id=run_id)


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """Three runs: tbl-train in runs 1 and 3, tbl-val in run 1, other-train in run 2."""
    root = tmp_path_factory.mktemp("datasets-home")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    alpha = client.create_experiment("alpha", artifact_location=(root / "a").as_uri())
    beta = client.create_experiment("beta", artifact_location=(root / "b").as_uri())
    table, other = frame(10, 3, seed=1), frame(25, 4, seed=2)
    first = log_inputs(
        uri,
        alpha,
        T0_MS,
        "first",
        [
            (table, "tbl-train", "/data/tbl.csv", "training"),
            (table.head(5), "tbl-val", "/data/tbl.csv", "validation"),
        ],
    )
    second = log_inputs(
        uri,
        beta,
        T0_MS + HOUR_MS,
        "second",
        [(other, "other-train", "https://example.com/other.csv", "training")],
    )
    third = log_inputs(
        uri, beta, T0_MS + 2 * HOUR_MS, "third", [(table, "tbl-train", "/data/tbl.csv", "training")]
    )
    register(uri, "m1", first)
    register(uri, "m2", third)
    return {"root": root, "uri": uri, "runs": (first, second, third)}


@pytest.fixture
def env(seen, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_HOME", str(seen["root"]))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", seen["uri"])
    from driftloop.settings import get_settings

    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def invoke(*args: str):
    return CliRunner().invoke(cli, ["datasets", *args])


def test_list_has_every_dataset_newest_first_with_its_runs_and_versions(env):
    first, second, third = env["runs"]
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["name"] for r in records] == ["tbl-train", "other-train", "tbl-val"]
    tbl, other, val = records
    assert (tbl["rows"], tbl["columns"], tbl["source"]) == (10, 3, "/data/tbl.csv")
    assert tbl["runs"] == [third, first]
    assert tbl["versions"] == ["m2/1", "m1/1"]
    assert [use["experiment"] for use in tbl["uses"]] == ["beta", "alpha"]
    assert {use["context"] for use in tbl["uses"]} == {"training"}
    assert (other["rows"], other["columns"]) == (25, 4)
    assert (other["source"], other["source_type"]) == ("https://example.com/other.csv", "http")
    assert other["runs"] == [second] and other["versions"] == []
    assert (val["rows"], val["uses"][0]["context"], val["versions"]) == (5, "validation", ["m1/1"])
    assert [c["name"] for c in tbl["schema"]] == ["x0", "x1", "label"]
    assert len({r["digest"] for r in (tbl, val)}) == 2  # other rows, another digest

    table = invoke("list")
    assert table.exit_code == 0, table.output
    for shown in ("tbl-train", "other-train", "tbl-val", tbl["digest"], "m2/1, m1/1"):
        assert shown in table.output


def test_show_by_name_or_digest_prefix(env):
    first, _, third = env["runs"]
    result = invoke("show", "tbl-train")
    assert result.exit_code == 0, result.output
    for shown in ("/data/tbl.csv", "x0", "x1", "label", first, third, "training", "m2/1"):
        assert shown in result.output

    listed = {r["name"]: r for r in json.loads(invoke("list", "--json").output)}
    prefix = listed["other-train"]["digest"][:6]
    by_digest = invoke("show", prefix, "--json")
    assert by_digest.exit_code == 0, by_digest.output
    assert [r["name"] for r in json.loads(by_digest.output)] == ["other-train"]


def test_unknown_dataset_is_one_line_naming_the_known_ones(env):
    result = invoke("show", "nope")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("driftloop: error: no dataset named 'nope'")
    assert "other-train, tbl-train, tbl-val" in lines[0]


def test_no_database_lists_nothing_and_creates_nothing(home: Path):
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "no datasets logged yet" in result.output
    assert invoke("list", "--json").output.strip() == "[]"
    assert not (home / "mlflow.db").exists()
