"""A pytest plugin that disables one failure-story guard, to show its test fails without it.

Opt-in only: ``DRIFTLOOP_TEST_DISABLE_GUARD=<guard> .venv/bin/python -m pytest
-p tests.integration.guards_off tests/integration/test_failure_<story>.py``. It patches
the running process (and nothing on disk), so a demonstration can never leave a guard
switched off in the shared tree. Guards:

* ``split-fingerprint`` -- ``training.gate.stored_score`` no longer checks that a stored
  score was measured on the split being judged (failure story b);
* ``runtime-requirements`` -- ``serving.smoke.check_runtime`` checks nothing (story a);
* ``module-message`` -- ``serving.smoke._load_failure`` names no missing module (story a).
"""

from __future__ import annotations

import math
import os

import pytest


def _stored_score_any_split(version, metric, test_fingerprint):
    from driftloop.lineage import TAG_METRIC_NAME, TAG_METRIC_VALUE

    tags = version.tags
    if tags.get(TAG_METRIC_NAME) != metric:
        return None
    try:
        value = float(tags[TAG_METRIC_VALUE])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _disable(guard: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if guard == "split-fingerprint":
        monkeypatch.setattr("driftloop.training.gate.stored_score", _stored_score_any_split)
    elif guard == "runtime-requirements":
        monkeypatch.setattr("driftloop.serving.smoke.check_runtime", lambda model_uri: {})
    elif guard == "module-message":
        monkeypatch.setattr("driftloop.serving.smoke._load_failure", lambda log_text: "")
    else:
        raise pytest.UsageError(f"DRIFTLOOP_TEST_DISABLE_GUARD: unknown guard {guard!r}")


@pytest.fixture(autouse=True)
def _guard_disabled(monkeypatch):
    guard = os.environ.get("DRIFTLOOP_TEST_DISABLE_GUARD", "")
    if guard:
        _disable(guard, monkeypatch)
    yield
