"""The console behind the predictor's token: 401 without it (a browser is sent to the login
page), 200 with a bearer header or after logging in."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from driftloop.console import auth
from driftloop.console.app import create_app
from driftloop.console.config import ConsoleConfig
from driftloop.settings import Settings

TOKEN = "the-predictors-token-0123456789"
HTML = {"accept": "text/html,application/xhtml+xml"}


def console(tmp_path, token: str | None) -> TestClient:
    # nothing is asked of the loop's services here; an http registry URI is opened lazily
    # (a sqlite one would create an MLflow database: seconds per test)
    closed = "http://127.0.0.1:9"
    config = ConsoleConfig.from_settings(
        Settings(home=tmp_path, api_token=token),
        tracking_uri=closed,
        predictor_url=closed,
        monitor_url=closed,
        trigger_url=closed,
    )
    return TestClient(create_app(config), follow_redirects=False)


def test_the_console_takes_the_predictors_token_from_the_settings(tmp_path):
    config = ConsoleConfig.from_settings(Settings(home=tmp_path, api_token=TOKEN))
    assert config.access_token == config.predictor_token == TOKEN
    assert ConsoleConfig.from_settings(Settings(home=tmp_path)).access_token is None


def test_the_console_answers_401_without_the_token_and_200_with_it(tmp_path):
    with console(tmp_path, TOKEN) as client:
        assert client.get("/healthz").status_code == 200  # probes need no token
        assert client.get("/static/console.css").status_code == 200  # the login page's style

        refused = client.get("/automl")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "missing or invalid token" in refused.json()["detail"]
        assert client.get("/automl", headers={"Authorization": "Bearer wrong"}).status_code == 401
        posted = client.post("/api/feedback/abc", json={"correct": True})
        assert posted.status_code == 401  # actions too, not only pages
        assert client.get("/api/automl/jobs/x", headers={"X-API-Key": "nope"}).status_code == 401

        assert client.get("/automl", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == (
            200
        )
        assert client.get("/automl", headers={"X-API-Key": TOKEN}).status_code == 200


def test_a_browser_logs_in_once_and_carries_a_cookie_that_is_not_the_token(tmp_path):
    with console(tmp_path, TOKEN) as client:
        sent = client.get("/automl?tab=1", headers=HTML)
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=%2Fautoml%3Ftab%3D1"
        form = client.get(sent.headers["location"], headers=HTML)
        assert form.status_code == 200 and 'id="login-form"' in form.text
        assert 'name="next" value="/automl?tab=1"' in form.text
        assert 'id="logout-button"' not in form.text

        wrong = client.post("/login", data={"token": "guess", "next": "/automl"})
        assert wrong.status_code == 401 and "token: not the console" in wrong.text
        assert auth.SESSION_COOKIE not in client.cookies

        accepted = client.post("/login", data={"token": TOKEN, "next": "/automl"})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/automl"
        cookie = accepted.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert TOKEN not in cookie
        page = client.get("/automl", headers=HTML)
        assert page.status_code == 200 and 'id="logout-button"' in page.text

        assert client.post("/logout").status_code == 303
        client.cookies.clear()  # the browser drops the cookie the logout expired
        assert client.get("/automl").status_code == 401


def test_a_forged_cookie_or_an_outside_return_address_is_refused(tmp_path):
    with console(tmp_path, TOKEN) as client:
        client.cookies.set(auth.SESSION_COOKIE, auth.session_value("another-token"))
        assert client.get("/automl").status_code == 401
        client.cookies.clear()
        answer = client.post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
        assert answer.status_code == 303 and answer.headers["location"] == "/models"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil", "/\\evil", "", None])
def test_only_same_site_paths_are_return_addresses(target):
    assert auth.safe_next(target) == "/models"
    assert auth.safe_next("/models/sentiment?hours=2") == "/models/sentiment?hours=2"


def test_without_a_token_the_console_is_open(tmp_path):
    with console(tmp_path, None) as client:
        assert client.get("/automl").status_code == 200
        assert 'id="logout-button"' not in client.get("/automl").text
        assert client.get("/login?next=/runs").headers["location"] == "/runs"


def test_ui_refuses_an_open_console_on_a_public_address(home, monkeypatch, capsys):
    from driftloop.cli import main

    monkeypatch.delenv("DRIFTLOOP_INSECURE", raising=False)
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("driftloop: error: --host 0.0.0.0: the console is open")
    assert "DRIFTLOOP_API_TOKEN" in error
