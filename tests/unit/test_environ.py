import os

import pytest

from driftloop.environ import patched_environ


def test_sets_and_unsets_then_restores(monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_TEST_KEEP", "original")
    monkeypatch.setenv("DRIFTLOOP_TEST_DROP", "present")
    monkeypatch.delenv("DRIFTLOOP_TEST_NEW", raising=False)

    with patched_environ(
        {"DRIFTLOOP_TEST_KEEP": "changed", "DRIFTLOOP_TEST_DROP": None, "DRIFTLOOP_TEST_NEW": "1"}
    ):
        assert os.environ["DRIFTLOOP_TEST_KEEP"] == "changed"
        assert "DRIFTLOOP_TEST_DROP" not in os.environ
        assert os.environ["DRIFTLOOP_TEST_NEW"] == "1"

    assert os.environ["DRIFTLOOP_TEST_KEEP"] == "original"
    assert os.environ["DRIFTLOOP_TEST_DROP"] == "present"
    assert "DRIFTLOOP_TEST_NEW" not in os.environ


def test_restores_when_the_block_raises(monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_TEST_KEEP", "original")
    with pytest.raises(RuntimeError), patched_environ({"DRIFTLOOP_TEST_KEEP": "changed"}):
        raise RuntimeError("boom")
    assert os.environ["DRIFTLOOP_TEST_KEEP"] == "original"
