"""`driftloop serve NAME` with only DRIFTLOOP_MODEL_URI set serves that model.

This is how the cluster runs it: the InferenceService (manifests/ and the
chart) passes the model to the runtime through DRIFTLOOP_MODEL_URI and no
--model-uri, and `driftloop deploy` patches the variable to roll out a
version. A real registry holds two versions; the champion alias points at the
first, the variable at the second.
"""

from __future__ import annotations

import httpx
import pytest

from driftloop.cli import main
from driftloop.settings import get_settings
from tests.conftest import free_ports
from tests.integration.conftest_serving import register_text_model, running_predictor, v2_body

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "sentiment"


def test_serve_loads_the_model_named_by_driftloop_model_uri(home):
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    champion = register_text_model(tracking, MODEL)
    pinned = register_text_model(tracking, MODEL, c=0.5, alias=None)
    assert (champion, pinned) == ("1", "2")

    env = {"DRIFTLOOP_MODEL_URI": f"models:/{MODEL}/{pinned}", "DRIFTLOOP_RELOAD_INTERVAL_S": "0"}
    with running_predictor(MODEL, home, env=env) as predictor:
        answer = httpx.post(
            f"{predictor.url}/v2/models/{MODEL}/infer", json=v2_body(["great product"]), timeout=30
        )
        metadata = httpx.get(f"{predictor.url}/v2/models/{MODEL}", timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == pinned
    assert metadata.json().get("versions") in (None, [pinned])


def test_an_unloadable_driftloop_model_uri_is_named_in_the_error(home, monkeypatch, capsys):
    monkeypatch.setenv("DRIFTLOOP_MODEL_URI", f"models:/{MODEL}/7")
    get_settings.cache_clear()
    http_port, grpc_port = free_ports(2)
    ports = ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    assert main(["serve", MODEL, *ports]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"driftloop: error: DRIFTLOOP_MODEL_URI: cannot load models:/{MODEL}/7")


def test_an_explicit_alias_and_driftloop_model_uri_together_are_refused(home, monkeypatch, capsys):
    monkeypatch.setenv("DRIFTLOOP_MODEL_URI", f"models:/{MODEL}/2")
    get_settings.cache_clear()
    http_port, grpc_port = free_ports(2)
    ports = ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    assert main(["serve", MODEL, "--alias", "challenger", *ports]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"driftloop: error: --alias and DRIFTLOOP_MODEL_URI='models:/{MODEL}/2' both choose "
        "the model to serve; pass --model-uri, or unset DRIFTLOOP_MODEL_URI"
    )
