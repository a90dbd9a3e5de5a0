"""What every section gets: where to write, how long to run, shared models, progress."""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.results import Figure, Results


class SectionSkipped(Exception):
    """A section cannot run here (a missing binary, environment or driftloop module)."""


def require(module: str, what: str) -> None:
    """Skip the section (rather than fail it) where ``module`` cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise SectionSkipped(f"{what} not importable: {exc}") from exc


@dataclass
class Budget:
    """How long each measurement runs; ``--quick`` shrinks everything."""

    quick: bool

    @property
    def load_seconds(self) -> float:  # one load-generator point
        return 2.0 if self.quick else 4.0

    @property
    def concurrencies(self) -> tuple[int, ...]:
        return (8,) if self.quick else (1, 8, 32)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return (1, 16, 128)

    @property
    def train_rows(self) -> tuple[int, ...]:
        return (500, 1000, 2000) if self.quick else (1000, 3000, 9000)


@dataclass
class Context:
    out: Path
    results: Results
    budget: Budget
    console: Console
    progress: Progress
    work: Path  # scratch space: DRIFTLOOP_HOME, server logs, model folders
    section: str = ""
    cache: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        name: str,
        value: float | None,
        unit: str,
        *,
        baseline: str,
        baseline_value: float | None,
        better: str,
        note: str = "",
        headline: bool = False,
        **params,
    ) -> Figure:
        return self.results.add(
            Figure(
                section=self.section,
                name=name,
                value=value,
                unit=unit,
                baseline=baseline,
                baseline_value=baseline_value,
                better=better,
                params=params,
                note=note,
                headline=headline,
            )
        )

    def note(self, text: str) -> None:
        self.results.note(self.section, text)

    def log(self, text: str) -> None:
        self.progress.console.print(f"[dim]{self.section}:[/dim] {text}")

    def logs_dir(self) -> Path:
        path = self.out / "logs" / self.section
        path.mkdir(parents=True, exist_ok=True)
        return path


def make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="driftloop-bench-"))


def remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
