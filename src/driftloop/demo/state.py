"""Where ``driftloop demo`` keeps a run (registry, store, ledger, logs, kept history) and
how ``driftloop ui`` finds the last one again. Light on imports: the console's CLI
reads it before anything heavy loads."""

from __future__ import annotations

import shutil
from pathlib import Path

MARKER = ".driftloop-demo"
# relative to the working directory, like a project's own .venv: `make demo` then
# `driftloop ui` in the same checkout find each other
STATE_ROOT = Path(".driftloop")
HOME = "home"  # the demo stack's DRIFTLOOP_HOME inside its state directory


class DemoSetupError(ValueError):
    """A demo option the user must change (named in the message)."""


def default_state_dir(blueprint: str) -> Path:
    return STATE_ROOT / f"demo-{blueprint}"


def prepare_state_dir(path: Path) -> Path:
    """A fresh demo directory; refuses to wipe a directory the demo did not create."""
    path = path.expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise DemoSetupError(f"--state-dir {path} is a file")
    if path.is_dir() and any(path.iterdir()):
        if not (path / MARKER).is_file():
            raise DemoSetupError(
                f"--state-dir {path} is not empty and was not created by the demo; "
                "choose an empty or new directory"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("created by `driftloop demo`; deleted by the next run\n")
    return path


def demo_homes(root: Path = STATE_ROOT) -> list[Path]:
    """Homes of the demos run from this directory that left a registry, newest first."""
    if not root.is_dir():
        return []
    homes = [
        state / HOME
        for state in root.glob("demo-*")
        if (state / MARKER).is_file() and (state / HOME / "mlflow.db").is_file()
    ]
    return sorted(homes, key=lambda home: (home / "mlflow.db").stat().st_mtime, reverse=True)
