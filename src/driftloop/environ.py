"""Scoped changes to this process's environment variables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


def _apply(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def patched_environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, unset) variables for the block; restore them all after.

    Child processes started inside the block (kfp.local tasks, servers) inherit the
    changed environment; the caller's own settings come back however the block ends.
    """
    saved = {name: os.environ.get(name) for name in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(saved)
