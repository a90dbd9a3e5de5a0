"""``driftloop models list|show`` and ``driftloop rollback`` on a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from driftloop.cli import cli
from driftloop.registry import CHAMPION, PREVIOUS_CHAMPION, ModelRegistry
from tests.unit import test_registry_support as support

# fixtures shared with the registry and gate tests
logged_models = support.logged_models
registry_env = support.registry_env

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def promoted_twice(registry_env, logged_models):
    """A model with v1 → v2 promoted (v1 previous-champion) and a gated v3 challenger."""
    registry = ModelRegistry(registry_env)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    tags = {
        "driftloop.metric.name": "macro_f1",
        "driftloop.metric.value": "0.875",
        "driftloop.split.test_fingerprint": "f" * 64,
        "driftloop.git_commit": "c" * 40,
    }
    v1 = registry.register(name, logged_models.movies_run, tags)
    v2 = registry.register(name, logged_models.both_run, {**tags, "driftloop.metric.value": "0.9"})
    v3 = registry.register(name, logged_models.weak_run, tags)
    registry.promote(name, v1)
    registry.promote(name, v2)
    registry.set_tags(
        name,
        v3,
        {
            "driftloop.decision": "keep",
            "driftloop.challenger_score": "0.58",
            "driftloop.champion_score": "0.9",
            "driftloop.rescored": "true",
        },
    )
    registry.mark_challenger(name, v3)
    return registry, name


def test_list_shows_aliases_and_metric(runner, promoted_twice):
    _, name = promoted_twice
    result = runner.invoke(cli, ["models", "list"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if name in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert cells == [name, "2", "3", "1", "3", "macro_f1=0.9000"]

    as_json = runner.invoke(cli, ["models", "list", "--json"])
    entry = next(item for item in json.loads(as_json.output) if item["name"] == name)
    assert (entry["champion"], entry["challenger"], entry["previous_champion"]) == ("2", "3", "1")


def test_show_lists_every_version(runner, promoted_twice):
    _, name = promoted_twice
    result = runner.invoke(cli, ["models", "show", name])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    v3 = next(line for line in lines if line.strip("│ ").startswith("3 "))
    assert "challenger" in v3 and "keep" in v3 and "0.5800" in v3 and "re-scored" in v3
    v2 = next(line for line in lines if line.strip("│ ").startswith("2 "))
    assert "champion" in v2 and "macro_f1=0.9000" in v2 and "c" * 12 in v2
    v1 = next(line for line in lines if line.strip("│ ").startswith("1 "))
    assert "previous-champion" in v1

    details = json.loads(runner.invoke(cli, ["models", "show", name, "--json"]).output)
    assert [v["version"] for v in details["versions"]] == ["1", "2", "3"]
    assert details["aliases"] == {"champion": "2", "previous-champion": "1", "challenger": "3"}


def test_show_unknown_model_is_a_one_line_error(runner, promoted_twice):
    _, name = promoted_twice
    result = runner.invoke(cli, ["models", "show", "nope"])
    assert result.exit_code == 2
    assert result.stderr.startswith("driftloop: error: no registered model named 'nope' (known: ")
    assert name in result.stderr
    assert result.stderr.count("\n") == 1


def test_rollback_restores_previous_champion(runner, promoted_twice):
    registry, name = promoted_twice
    result = runner.invoke(cli, ["rollback", name, "--reason", "LiveScoreDrop", "--no-roll-out"])
    assert result.exit_code == 0, result.output
    assert "champion is version 1 again" in result.output
    assert registry.aliases(name)[CHAMPION] == "1"
    assert PREVIOUS_CHAMPION not in registry.aliases(name)
    assert registry.get_version(name, "2").tag("rolled_back_reason") == "LiveScoreDrop"

    again = runner.invoke(cli, ["rollback", name, "--no-roll-out"])
    assert again.exit_code == 2
    assert again.stderr.strip() == (
        f"driftloop: error: model '{name}' has no previous-champion to roll back to"
    )


def test_rollback_rejects_blank_reason_and_unknown_model(runner, registry_env):
    blank = runner.invoke(cli, ["rollback", "whatever", "--reason", " "])
    assert blank.exit_code == 2 and "--reason must not be empty" in blank.stderr
    unknown = runner.invoke(cli, ["rollback", "nope", "--no-roll-out"])
    assert unknown.exit_code == 2
    assert "no registered model named 'nope'" in unknown.stderr


def test_listing_an_empty_home_creates_nothing(runner, home):
    result = runner.invoke(cli, ["models", "list"])
    assert result.exit_code == 0 and result.output.strip() == "no registered models"
    assert not (home / "mlflow.db").exists()


def test_unknown_model_with_no_registry_yet(runner, home):
    result = runner.invoke(cli, ["models", "show", "nope"])
    assert result.exit_code == 2
    assert result.stderr == "driftloop: error: no registered model named 'nope' (known: none)\n"
    assert not (home / "mlflow.db").exists()


@pytest.mark.slow  # a fresh interpreter importing MLflow: a few seconds
def test_installed_command_prints_one_line_and_exits_2(promoted_twice):
    _, name = promoted_twice
    driftloop = Path(sys.executable).parent / "driftloop"
    if not driftloop.is_file():
        driftloop = REPO_ROOT / ".venv" / "bin" / "driftloop"
    completed = subprocess.run(
        [str(driftloop), "models", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),  # MLFLOW_TRACKING_URI of the populated test registry
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr  # no MLflow log lines, no traceback
    assert lines[0].startswith("driftloop: error: no registered model named 'nope' (known: ")
    assert name in lines[0]
