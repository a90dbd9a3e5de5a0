"""A timestamped, printed record of what happened during the demo."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Console

STYLES = {
    "setup": "cyan",
    "traffic": "white",
    "drift": "yellow",
    "alert": "bold red",
    "trigger": "magenta",
    "run": "blue",
    "registry": "bold green",
    "serving": "green",
    "error": "bold red",
}


@dataclass
class Event:
    at: float  # time.time()
    kind: str
    message: str


@dataclass
class Timeline:
    console: Console = field(default_factory=Console)
    started: float = field(default_factory=time.time)
    events: list[Event] = field(default_factory=list)

    def note(self, kind: str, message: str) -> Event:
        event = Event(time.time(), kind, message)
        self.events.append(event)
        clock = datetime.fromtimestamp(event.at, UTC).strftime("%H:%M:%S")
        style = STYLES.get(kind, "white")
        self.console.print(
            f"[dim]{clock} +{event.at - self.started:6.1f}s[/dim] "
            f"[{style}]{kind:>8}[/{style}]  {message}",
            highlight=False,
            soft_wrap=True,
        )
        return event

    def first(self, kind: str, contains: str = "") -> Event | None:
        return next((e for e in self.events if e.kind == kind and contains in e.message), None)
