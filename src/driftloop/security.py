"""Small defences shared by driftloop's services and state files.

* :func:`mask_secrets` hides passwords in URLs (``postgresql://user:***@host``),
  bearer tokens and the configured secret values in anything driftloop writes
  to a log or prints as status; :func:`masked_output` does it for every byte a
  process (and its children) writes to stdout/stderr.
* :func:`private_dir` / :func:`open_private` / :func:`write_private` create
  state directories 0700 and files 0600 (pid files, logs, run specs, ledgers).
* :func:`read_body` reads an HTTP request body with a byte cap that holds for
  chunked bodies too (counted as they arrive), and :func:`bearer_matches`
  compares bearer tokens as bytes, so no header can turn into a 500.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
# scheme://user:password@  (the user part may be empty: redis://:pw@host)
_URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*):[^@\s'\"]+@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s'\",}]+")
_SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|SECRET|API_KEY)", re.IGNORECASE)
_MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words


def url_password(url: str | None) -> str | None:
    if not url or "://" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def secret_values(settings: Any = None, environ: dict[str, str] | None = None) -> set[str]:
    """The secret strings this process knows: tokens, URL passwords, *_TOKEN/*_PASSWORD env."""
    found: set[str] = set()
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if value and _SECRET_ENV.search(name):
            found.add(value)
        password = url_password(value) if value and "://" in value else None
        if password:
            found.add(password)
    if settings is not None:
        for name in ("api_token", "trigger_token", "monitor_token"):
            value = getattr(settings, name, None)
            if value:
                found.add(str(value))
        for name in ("store_url", "tracking_uri", "kfp_host"):
            password = url_password(getattr(settings, name, None))
            if password:
                found.add(password)
    expanded = set()
    for value in found:
        expanded.add(value)
        expanded.add(unquote(value))
    return {value for value in expanded if len(value) >= _MIN_SECRET_CHARS}


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL passwords, bearer tokens and each of ``secrets`` replaced by ***."""
    if not text:
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_data(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:func:`mask_secrets` applied to every string inside JSON-like data."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, dict):
        return {key: mask_data(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(item, secrets) for item in value]
    return value


# --- private state files ---------------------------------------------------------
def private_dir(path: Path | str) -> Path:
    """``path`` (and missing parents) created 0700; an existing one is tightened to 0700."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    return path


def open_private(path: Path | str, mode: str = "w", **kwargs: Any):  # noqa: ANN201
    """``open(path, mode)`` with the file created 0600 (an existing one is tightened)."""
    flags = os.O_CREAT | (os.O_RDWR if "+" in mode else os.O_WRONLY)
    if "a" in mode:
        flags |= os.O_APPEND
    elif "w" in mode:
        flags |= os.O_TRUNC
    if "x" in mode:
        flags |= os.O_EXCL
    descriptor = os.open(path, flags, 0o600)
    with contextlib.suppress(OSError):
        os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, mode.replace("x", "w"), **kwargs)


def write_private(path: Path | str, text: str) -> Path:
    with open_private(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def touch_private(path: Path | str) -> Path:
    """Create ``path`` empty with mode 0600 if missing; tighten it to 0600 if present."""
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    return Path(path)


# --- everything a process writes, masked -------------------------------------------
@contextlib.contextmanager
def masked_output(secrets: Iterable[str] = (), join_timeout_s: float = 5.0) -> Iterator[None]:
    """Route fds 1 and 2 (this process and every child it starts) through the masker.

    A pipe replaces stdout/stderr; a thread masks complete lines and writes them to
    where stdout went before. On exit the original descriptors come back.
    """
    secrets = tuple(secrets)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    destination = os.dup(1)
    saved = (os.dup(1), os.dup(2))
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def emit(chunk: bytes) -> None:
        text = chunk.decode("utf-8", errors="surrogateescape")
        data = mask_secrets(text, secrets).encode("utf-8", errors="surrogateescape")
        while data:
            written = os.write(destination, data)
            data = data[written:]

    def pump() -> None:
        pending = b""
        try:
            while chunk := os.read(read_end, 65536):
                pending += chunk
                cut = pending.rfind(b"\n")
                if cut >= 0:
                    emit(pending[: cut + 1])
                    pending = pending[cut + 1 :]
                elif len(pending) > 1 << 20:  # a megabyte without a newline
                    emit(pending)
                    pending = b""
            if pending:
                emit(pending)
        finally:
            os.close(read_end)
            os.close(destination)

    thread = threading.Thread(target=pump, name="driftloop-output-masker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in saved:
            os.close(descriptor)
        # children that outlive us keep the pipe open; do not wait for them forever
        thread.join(join_timeout_s)


# --- HTTP request bodies -------------------------------------------------------------
class BodyTooLarge(ValueError):
    """A request body is over the service's cap."""


async def read_body(request: Any, limit: int) -> bytes:
    """The body of a Starlette request, refusing more than ``limit`` bytes.

    The declared Content-Length is checked first; a chunked (or lying) body is
    counted as it arrives and reading stops at the first byte over the cap.
    """
    declared = request.headers.get("content-length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant time, bytes)."""
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent
    try:
        sent = presented.strip().encode("latin-1")
    except UnicodeEncodeError:
        sent = presented.strip().encode("utf-8", errors="surrogateescape")
    return hmac.compare_digest(sent, token.encode("utf-8"))


def is_loopback_client(host: str | None) -> bool:
    import ipaddress

    if not host:
        return False
    if host in ("localhost", "testclient"):  # Starlette's TestClient names itself so
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
