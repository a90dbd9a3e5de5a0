"""``driftloop serve`` / ``driftloop monitor`` default OMP_NUM_THREADS to 1, never over a user's."""

from __future__ import annotations

import os

import pytest

from driftloop.cli import main

# Both fail on their arguments right after startup, before any server starts.
COMMANDS = {
    "serve": ["serve", "sentiment", "--http-port", "8080", "--grpc-port", "8080"],
    "monitor": ["monitor", "sentiment", "--fit-reference", "missing.parquet"],
}


@pytest.fixture
def omp_unset(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "placeholder")  # so teardown restores the original
    monkeypatch.delenv("OMP_NUM_THREADS")


@pytest.mark.parametrize("command", COMMANDS)
def test_unset_becomes_one(command, omp_unset, home, capsys):
    assert main(COMMANDS[command]) == 2
    assert os.environ["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_users_value_is_kept(command, monkeypatch, home, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert main(COMMANDS[command]) == 2
    assert os.environ["OMP_NUM_THREADS"] == "3"
