"""The result format: every figure carries its baseline, ratio, unit, machine and date.

A figure whose baseline could not be measured still has the keys, with
``baseline_value``/``ratio`` set to ``None`` and ``note`` saying why; a section
that could not run at all is recorded with its reason instead of silently
missing from the table.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.machine import describe_machine, utc_now

SCHEMA = "driftloop-bench/1"
REQUIRED_FIGURE_KEYS = (
    "section",
    "name",
    "value",
    "unit",
    "baseline",
    "baseline_value",
    "ratio",
    "better",
    "machine",
    "date",
)


def ratio(value: float | None, baseline_value: float | None) -> float | None:
    """value / baseline, or None where either is missing, not finite, or the baseline is 0."""
    if value is None or baseline_value is None:
        return None
    if not (math.isfinite(value) and math.isfinite(baseline_value)) or baseline_value == 0:
        return None
    return value / baseline_value


@dataclass
class Figure:
    section: str
    name: str
    value: float | None
    unit: str
    baseline: str  # what the value is compared with, in words
    baseline_value: float | None
    better: Literal["higher", "lower"]
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    headline: bool = False  # also listed under "Key figures" at the top of results.md
    ratio: float | None = None
    machine: dict = field(default_factory=dict)
    date: str = ""

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"better must be 'higher' or 'lower', not {self.better!r}")
        self.ratio = ratio(self.value, self.baseline_value)


@dataclass
class SectionOutcome:
    status: Literal["ok", "skipped", "failed"]
    seconds: float
    reason: str = ""


class Results:
    """Collects the figures of one run and writes results.json + results.md."""

    def __init__(self, *, quick: bool, machine: dict | None = None, date: str | None = None):
        self.quick = quick
        self.machine = machine or describe_machine()
        self.date = date or utc_now()
        self.figures: list[Figure] = []
        self.sections: dict[str, SectionOutcome] = {}
        self.notes: dict[str, list[str]] = {}
        self.artifacts: dict[str, list[str]] = {}

    def add(self, figure: Figure) -> Figure:
        figure.machine = self.machine
        figure.date = self.date
        self.figures.append(figure)
        return figure

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)

    def artifact(self, section: str, path: Path | str) -> None:
        self.artifacts.setdefault(section, []).append(str(path))

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "date": self.date,
            "quick": self.quick,
            "machine": self.machine,
            "sections": {name: asdict(outcome) for name, outcome in self.sections.items()},
            "notes": self.notes,
            "artifacts": self.artifacts,
            "figures": [asdict(figure) for figure in self.figures],
        }

    def write(self, out: Path) -> tuple[Path, Path]:
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / "results.json"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        md_path = out / "results.md"
        md_path.write_text(render_markdown(self.to_dict()))
        return json_path, md_path


def validate(document: dict) -> list[str]:
    """Problems with a results document (empty when it follows the schema)."""
    problems = []
    if document.get("schema") != SCHEMA:
        problems.append(f"schema is {document.get('schema')!r}, expected {SCHEMA!r}")
    for index, figure in enumerate(document.get("figures", [])):
        missing = [key for key in REQUIRED_FIGURE_KEYS if key not in figure]
        if missing:
            problems.append(f"figure {index} ({figure.get('name')}) lacks {', '.join(missing)}")
            continue
        if not figure["machine"].get("cores") or not figure["machine"].get("cpu_model"):
            problems.append(f"figure {index} ({figure['name']}) has no machine cores/cpu_model")
        expected = ratio(figure["value"], figure["baseline_value"])
        if (
            expected is None
            and figure["ratio"] is not None
            or (
                expected is not None
                and (figure["ratio"] is None or not math.isclose(expected, figure["ratio"]))
            )
        ):
            problems.append(
                f"figure {index} ({figure['name']}) ratio disagrees with value/baseline"
            )
    return problems


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.3g}"
    return f"{value:.2e}"


def _fmt_ratio(value: float) -> str:
    if abs(value) >= 1000 or (value != 0 and abs(value) < 0.01):
        return f"{value:.2e}"
    return f"{value:.2f}"


def _params(params: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items())


def _key_figures(figures: list[dict]) -> list[str]:
    headline = [f for f in figures if f.get("headline")]
    if not headline:
        return []
    lines = [
        "## Key figures",
        "",
        "| section | figure | parameters | value | unit | baseline | baseline value | ratio |",
        "| --- | --- | --- | ---: | --- | --- | ---: | ---: |",
    ]
    for f in headline:
        shown_ratio = "n/a" if f["ratio"] is None else _fmt_ratio(f["ratio"])
        lines.append(
            f"| {f['section']} | {f['name']} | {_params(f['params'])} | {_fmt(f['value'])} "
            f"| {f['unit']} | {f['baseline']} | {_fmt(f['baseline_value'])} | {shown_ratio} |"
        )
    return [*lines, ""]


def render_markdown(document: dict) -> str:
    machine = document["machine"]
    lines = [
        f"# driftloop benchmarks ({'quick' if document['quick'] else 'full'} run)",
        "",
        f"- date: {document['date']}",
        f"- machine: {machine.get('cores')} cores, {machine.get('cpu_model')}, "
        f"{machine.get('memory_gib')} GiB, Python {machine.get('python')}, "
        f"load average at start {machine.get('loadavg')}",
        "- ratio = value / baseline value; `better` says which direction is good.",
        "",
    ]
    lines.extend(_key_figures(document["figures"]))
    by_section: dict[str, list[dict]] = {}
    for figure in document["figures"]:
        by_section.setdefault(figure["section"], []).append(figure)
    extra = [name for name in document.get("notes", {}) if name not in document["sections"]]
    for section in [*document["sections"], *extra]:
        outcome = document["sections"].get(section, {"status": "ok"})
        lines.append(f"## {section}")
        lines.append("")
        if outcome["status"] != "ok":
            lines.append(
                f"**{outcome['status']}** after {outcome['seconds']:.0f} s: {outcome['reason']}"
            )
            lines.append("")
        figures = by_section.get(section, [])
        if figures:
            lines.append(
                "| figure | parameters | value | unit | baseline | baseline value | ratio "
                "| better |"
            )
            lines.append("| --- | --- | ---: | --- | --- | ---: | ---: | --- |")
            for f in figures:
                shown_ratio = "n/a" if f["ratio"] is None else _fmt_ratio(f["ratio"])
                lines.append(
                    f"| {f['name']} | {_params(f['params'])} | {_fmt(f['value'])} | {f['unit']} | "
                    f"{f['baseline']} | {_fmt(f['baseline_value'])} | {shown_ratio} "
                    f"| {f['better']} |"
                )
            lines.append("")
        for note in document.get("notes", {}).get(section, []):
            lines.append(f"- {note}")
        for artifact in document.get("artifacts", {}).get(section, []):
            lines.append(f"- ![{Path(artifact).stem}]({Path(artifact).name})")
        if document.get("notes", {}).get(section) or document.get("artifacts", {}).get(section):
            lines.append("")
    return "\n".join(lines) + "\n"
