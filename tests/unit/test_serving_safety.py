"""Safe defaults of the predictor, without a server: bind check, body limit, log
escaping, client-error logging, metric labels, repository unload/load and auth."""

from __future__ import annotations

import asyncio
import logging

import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from kserve.errors import InvalidInput

from driftloop.serving import metrics, safety
from driftloop.serving.auth import AuthMiddleware
from driftloop.serving.middleware import RequestMetricsMiddleware
from driftloop.serving.repository import ReloadingModelRepository


# --- bind --------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "[::1]", "localhost"])
def test_loopback_binds_need_nothing(host):
    safety.check_bind(host, None, False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com"])
def test_open_binds_need_a_token_or_insecure(host):
    with pytest.raises(safety.UnsafeBindError, match="DRIFTLOOP_API_TOKEN.*--insecure"):
        safety.check_bind(host, None, False)
    safety.check_bind(host, "token", False)
    safety.check_bind(host, None, True)


def test_grpc_addresses_and_peers():
    assert safety.grpc_address("127.0.0.1", 8081) == "127.0.0.1:8081"
    assert safety.grpc_address("::", 8081) == "[::]:8081"
    assert safety.grpc_peer_host("ipv4:127.0.0.1:5555") == "127.0.0.1"
    assert safety.grpc_peer_host("ipv6:[::1]:5555") == "::1"
    assert safety.grpc_peer_host("unix:/tmp/x") is None


def test_cli_refuses_an_open_bind_in_one_line(monkeypatch):
    from driftloop.cli import cli
    from driftloop.settings import get_settings

    monkeypatch.delenv("DRIFTLOOP_API_TOKEN", raising=False)
    monkeypatch.delenv("DRIFTLOOP_INSECURE", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "m", "--host", "0.0.0.0"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0 without DRIFTLOOP_API_TOKEN" in result.output
    assert "--insecure" in result.output


def test_settings_default_to_loopback():
    from driftloop.settings import Settings

    settings = Settings()
    assert settings.predictor_host == "127.0.0.1"
    assert settings.insecure is False
    assert settings.max_body_bytes == 32 * 1024 * 1024


# --- body limit --------------------------------------------------------------------------
def _echo_app(limit: int) -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    app.add_middleware(safety.BodySizeLimitMiddleware, max_bytes=limit)
    return app


def test_declared_body_over_the_limit_is_413():
    client = TestClient(_echo_app(100))
    answer = client.post("/echo", content=b"x" * 101)
    assert answer.status_code == 413
    assert "100 bytes" in answer.json()["error"]
    assert client.post("/echo", content=b"x" * 100).json() == {"bytes": 100}


def test_streamed_body_over_the_limit_is_413_without_reading_it_all():
    client = TestClient(_echo_app(1000))
    pulled = []

    def chunks():
        for _ in range(10_000):
            pulled.append(1)
            yield b"y" * 100

    answer = client.post("/echo", content=chunks())
    assert answer.status_code == 413
    assert client.post("/echo", content=iter([b"y" * 500, b"y" * 500])).json() == {"bytes": 1000}


# --- logs --------------------------------------------------------------------------------
def test_escape_control():
    assert safety.escape_control("a\nb\rc\x1bd\te") == "a\\nb\\rc\\x1bd\\te"
    assert safety.escape_control("plain") == "plain"


@pytest.fixture
def escaping():
    previous = logging.getLogRecordFactory()
    safety.install_log_escaping()
    safety.install_log_escaping()  # idempotent
    yield
    logging.setLogRecordFactory(previous)


@pytest.fixture
def uvicorn_logs_captured():
    """A server started in this process by an earlier test leaves uvicorn's loggers
    not propagating (its logging config) and uvicorn.access at WARNING: undo that here."""
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    saved = [(lg.propagate, lg.disabled, lg.level) for lg in loggers]
    for logger in loggers:
        logger.propagate, logger.disabled = True, False
        logger.setLevel(logging.INFO)  # setLevel also clears the isEnabledFor cache
    yield
    for logger, (propagate, disabled, level) in zip(loggers, saved, strict=True):
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(level)


def test_log_records_of_our_loggers_are_escaped(escaping, uvicorn_logs_captured, caplog):
    class Id:
        def __str__(self) -> str:
            return "id\nFORGED"

    with caplog.at_level(logging.INFO):
        logging.getLogger("kserve").info("model %s req %s n=%d", "m\nFORGED line", Id(), 3)
        logging.getLogger("uvicorn.access").info("%(path)s", {"path": "/v2/models/a\r\nb"})
        logging.getLogger("driftloop.x").info("f-string \n forged")
        logging.getLogger("somebody.else").info("left\nalone")
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "model m\\nFORGED line req id\\nFORGED n=3"
    assert messages[1] == "/v2/models/a\\r\\nb"
    assert messages[2] == "f-string \\n forged"
    assert messages[3] == "left\nalone"


def test_client_errors_log_one_line_without_traceback(escaping, caplog):
    app = FastAPI(exception_handlers=safety.client_error_handlers())

    @app.get("/bad")
    async def bad() -> None:
        raise InvalidInput("bad\ninput")

    with caplog.at_level(logging.INFO):
        answer = TestClient(app).get("/bad")
    assert answer.status_code == 400 and answer.json() == {"error": "bad\ninput"}
    (record,) = [r for r in caplog.records if r.name == "driftloop.serving.safety"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "GET /bad -> 400 InvalidInput: bad\\ninput"


# --- metrics labels ----------------------------------------------------------------------
def test_unknown_model_names_share_one_label():
    metrics.register_models(["served-one"])
    assert metrics.model_label("served-one") == "served-one"
    assert metrics.model_label("") == ""
    assert metrics.model_label("random-abc") == metrics.UNKNOWN_MODEL

    app = FastAPI()
    app.add_middleware(RequestMetricsMiddleware)
    client = TestClient(app)
    before = metrics.REQUESTS.labels(
        model="unknown", endpoint="v2_infer", status="404"
    )._value.get()
    for i in range(50):
        client.post(f"/v2/models/rnd{i}/infer")
    after = metrics.REQUESTS.labels(model="unknown", endpoint="v2_infer", status="404")._value.get()
    assert after - before == 50
    from prometheus_client import REGISTRY, generate_latest

    assert b"rnd1" not in generate_latest(REGISTRY)


# --- repository --------------------------------------------------------------------------
class FakeModel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ready = True
        self.engine = False
        self.reloads = 0

    def reload(self, force: bool = False) -> bool:
        self.reloads += 1
        self.ready = True
        return True

    async def healthy(self) -> bool:
        return self.ready


def test_unload_keeps_the_model_but_not_ready_and_load_reloads_it():
    from driftloop.serving.server import DriftloopDataPlane

    repo = ReloadingModelRepository()
    model = FakeModel("m")
    repo.update(model)
    plane = DriftloopDataPlane(model_registry=repo)
    run = asyncio.run
    assert run(plane.ready()) is True
    repo.unload("m")
    assert repo.get_model("m") is model
    assert run(repo.is_model_ready("m")) is False
    assert run(plane.ready()) is False
    model.ready = True  # a background poller's reload does not undo an unload
    assert run(plane.model_ready("m")) is False
    from kserve.errors import ModelNotReady

    with pytest.raises(ModelNotReady):
        run(plane.get_model("m"))
    assert run(repo.load("m")) is True
    assert model.reloads == 1
    assert run(plane.ready()) is True and run(plane.model_ready("m")) is True
    with pytest.raises(KeyError):
        repo.unload("other")
    assert run(ReloadingModelRepository().all_ready()) is False


# --- auth: repository off loopback --------------------------------------------------------
def _repo_app(token: str | None, client_host: str) -> TestClient:
    app = FastAPI()

    @app.post("/v2/repository/models/{name}/unload")
    async def unload(name: str) -> dict:
        return {"name": name, "unload": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str) -> dict:
        return {}

    app.add_middleware(AuthMiddleware, token=token)
    return TestClient(app, client=(client_host, 5000))


def test_repository_without_token_is_loopback_only():
    assert _repo_app(None, "127.0.0.1").post("/v2/repository/models/m/unload").status_code == 200
    assert _repo_app(None, "::1").post("/v2/repository/models/m/unload").status_code == 200
    remote = _repo_app(None, "10.0.0.9")
    denied = remote.post("/v2/repository/models/m/unload")
    assert denied.status_code == 403 and "loopback" in denied.json()["error"]
    assert remote.post("/v2/models/m/infer").status_code == 200  # open by design without token


def test_repository_with_token_needs_it_even_on_loopback():
    local = _repo_app("tok", "127.0.0.1")
    assert local.post("/v2/repository/models/m/unload").status_code == 401
    ok = local.post("/v2/repository/models/m/unload", headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200
    remote = _repo_app("tok", "10.0.0.9")
    assert (
        remote.post("/v2/repository/models/m/unload", headers={"X-API-Key": "tok"}).status_code
        == 200
    )
