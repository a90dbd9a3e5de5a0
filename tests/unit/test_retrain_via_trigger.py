"""``driftloop retrain NAME --trigger URL``: the command asks a running trigger (a real uvicorn
server on 127.0.0.1, its real ``POST /retrain``, token and worker-process launcher) instead of
launching here; every refusal is one ``driftloop: error:`` line naming what to change.

Registry-free for speed: the trigger is told which models exist, and its pipeline takes the
model name alone. ``--param`` checks against a champion's blueprint (422) are the route's
own tests (test_retrain_route.py)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

import httpx
import pytest

from driftloop.cli import main
from driftloop.cli.retrain import retrain_endpoint
from tests.conftest import REPO_ROOT, free_port

TOKEN = "retrain-token"


def model_job(model_name: str, reason: str) -> dict:
    """Stands in for the retraining pipeline: reports what it was asked to retrain."""
    return {"model": model_name, "reason": reason}


@contextmanager
def running_trigger(home):
    import uvicorn

    from driftloop.settings import Settings
    from driftloop.trigger.app import create_app
    from driftloop.trigger.launchers import LocalLauncher
    from driftloop.trigger.service import TriggerService

    pipeline = "tests.unit.test_retrain_via_trigger:model_job"
    settings = Settings(home=home, trigger_token=TOKEN, retrain_pipeline=pipeline)
    launcher = LocalLauncher(settings, env={"PYTHONPATH": str(REPO_ROOT)})
    service = TriggerService(settings, launcher, model_exists=lambda name: name == "prices")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, service),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )  # fmt: skip
    )
    thread = threading.Thread(target=server.run, name="trigger-under-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "trigger did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def retrain(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["retrain", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_retrain_asks_the_running_trigger(home, monkeypatch, capsys):
    from driftloop.settings import get_settings

    with running_trigger(home) as url:
        code, _, err = retrain(capsys, "prices", "--trigger", url)
        assert code == 2 and err.count("\n") == 1
        assert "refused no DRIFTLOOP_TRIGGER_TOKEN (401" in err

        monkeypatch.setenv("DRIFTLOOP_TRIGGER_TOKEN", TOKEN)
        get_settings.cache_clear()
        code, out, err = retrain(capsys, "prices", "--trigger", f"{url}/alerts", "--json")
        assert code == 0, err
        decision = json.loads(out)
        assert decision["outcome"] == "launched" and decision["model"] == "prices"
        runs = httpx.get(f"{url}/runs", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert decision["run_id"] in {run["run_id"] for run in runs["runs"]}  # its ledger's

        code, _, err = retrain(capsys, "nope", "--trigger", url)
        assert code == 2 and err.startswith("driftloop: error: NAME:") and "not registered" in err
        # the address alerts are posted to stands in for --trigger
        monkeypatch.setenv("DRIFTLOOP_TRIGGER_URL", f"{url}/alerts")
        get_settings.cache_clear()
        code, out, err = retrain(capsys, "prices")
        # the trigger's answer (launched, or busy: one run per model at a time); a local
        # launch would find no "prices" in this home's registry
        assert code == 2 and "still in flight" in err or code == 0 and "launched" in out
    get_settings.cache_clear()


def test_an_unreachable_or_odd_trigger_url_is_one_line(home, capsys):
    port = free_port()  # nothing listens there
    code, _, err = retrain(capsys, "prices", "--trigger", f"http://127.0.0.1:{port}")
    assert code == 2 and err.startswith("driftloop: error: --trigger: cannot reach")
    assert err.count("\n") == 1
    with pytest.raises(Exception, match="--trigger: expected an http"):
        retrain_endpoint("127.0.0.1:8095")
    assert retrain_endpoint("http://h:1/alerts/") == "http://h:1/retrain"
