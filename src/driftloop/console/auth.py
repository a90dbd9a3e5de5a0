"""The console behind the predictor's token: a login page for people, a bearer header for scripts.

With a token configured (``DRIFTLOOP_API_TOKEN``, the predictor's own: the chart
gives both pods the same Secret), every page and API call needs it. Scripts send
it as the predictor takes it (``Authorization: Bearer <token>`` or ``X-API-Key``);
a browser posts it once to ``/login`` and then carries a session cookie. The
cookie holds an HMAC of the token, never the token itself, so a leaked cookie
does not open the predictor, and rotating the token ends every session. The
cookie is HttpOnly and SameSite=Strict: another site cannot make a logged-in
browser launch a training run or send feedback.

Without a token the console is open; ``driftloop ui`` then binds loopback only
(unless DRIFTLOOP_INSECURE).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from driftloop.serving.auth import token_matches

SESSION_COOKIE = "driftloop_console_session"
# Probes, the login form itself and the stylesheet/script it uses need no token.
OPEN_PATHS = ("/healthz", "/login", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)
SESSION_CONTEXT = b"driftloop console session v1"
MISSING_TOKEN = (
    "missing or invalid token: log in at /login, or send 'Authorization: Bearer <token>' "
    "or 'X-API-Key: <token>'"
)


def session_value(token: str) -> str:
    """What the session cookie holds for ``token``: derived from it, not it."""
    return hmac.new(token.encode(), SESSION_CONTEXT, hashlib.sha256).hexdigest()


def is_token(token: str, presented: str) -> bool:
    """``presented`` is ``token`` (constant-time, as the predictor compares)."""
    presented = presented.strip()
    return bool(presented) and hmac.compare_digest(presented.encode(), token.encode())


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def is_authenticated(token: str | None, request: Request) -> bool:
    if not token:
        return True
    headers = {key.lower(): value for key, value in request.headers.items()}
    if ("authorization" in headers or "x-api-key" in headers) and token_matches(token, headers):
        return True
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie is not None and hmac.compare_digest(cookie, session_value(token))


def safe_next(target: str | None) -> str:
    """A same-site path to return to after login (an absolute URL would be an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/models"
    return target


def wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def requested_path(request: Request) -> str:
    """The path and query asked for, to come back to after logging in."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def login_url(request: Request) -> str:
    return f"/login?next={quote(requested_path(request), safe='')}"


def middleware(
    token: str | None,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """An HTTP middleware refusing requests without the token.

    A browser asking for a page is sent to the login form (303, the page it asked for
    comes back after login); anything else gets a 401 with a JSON reason.
    """

    async def check(request: Request, call_next) -> Response:  # noqa: ANN001 - Starlette's
        if not token or is_open_path(request.url.path) or is_authenticated(token, request):
            return await call_next(request)
        if wants_html(request):
            return RedirectResponse(login_url(request), status_code=303)
        return JSONResponse(
            {"detail": MISSING_TOKEN}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    return check
