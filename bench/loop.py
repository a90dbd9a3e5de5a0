"""The loop: drift onset → new champion serving, on the embedded stack, phase by phase.

Runs the sentiment demo (``driftloop.demo.scenario.LoopDemo``,
quick data sizes) twice: with real Prometheus + Alertmanager, and with the
built-in alert evaluator that posts the same webhook. Nothing is
re-implemented here: the phases are read off the demo's report and timeline,
and the retraining pipeline's step times off its kfp.local ``run.log``.

Phases (seconds): detection (onset → the monitor's gauge says drift, polled
every second), alert (→ Prometheus reports the alert firing; with the built-in
evaluator, → the first firing webhook the trigger recorded, so its "trigger"
phase is ~0), trigger (→ retraining run launched), pipeline (→ run succeeded
as the trigger reports it; inside it, the worker start -- launch → the first
task's start in run.log -- and the gate step are timed separately),
reload (the promote step's start in run.log → the first answer from the new
version: the predictor's registry poll and model swap; an upper bound, the
alias moves somewhere inside that step). The baseline of each
phase with Prometheus is the same phase with the built-in evaluator.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

from rich.console import Console

from bench.context import Context, SectionSkipped

PHASES = (
    "detection",
    "alert",
    "trigger",
    "pipeline",
    "worker start (run launched → first task started)",
    "gate step",
    "reload (promote step start → first answer of new version)",
    "total",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_LINE = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d{3}) - INFO - (?:Executing task '([^']+)'|"
    r"Task '([^']+)' finished with status (\w+))"
)


def task_seconds(run_log: Path) -> dict[str, float]:
    """Per-task wall seconds from a kfp.local run.log (its own HH:MM:SS.mmm stamps)."""
    started: dict[str, datetime] = {}
    seconds: dict[str, float] = {}
    for raw in run_log.read_text(errors="replace").splitlines():
        match = _TASK_LINE.match(_ANSI.sub("", raw).strip())
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%H:%M:%S.%f")
        if match.group(2):
            started[match.group(2)] = stamp
        elif match.group(3) in started:
            delta = (stamp - started[match.group(3)]).total_seconds()
            seconds[match.group(3)] = delta + 86400 if delta < 0 else delta  # past midnight
    return seconds


def task_started_at(run_log: Path, task: str, near: float) -> float | None:
    """Epoch seconds at which ``task`` started, from the log's local HH:MM:SS.mmm stamp.

    The stamp has no date: it is placed on the local day of ``near`` (an epoch
    time close to it), moved by a day if that lands more than 12 h away.
    """
    for raw in run_log.read_text(errors="replace").splitlines():
        match = _TASK_LINE.match(_ANSI.sub("", raw).strip())
        if match and match.group(2) == task:
            clock = datetime.strptime(match.group(1), "%H:%M:%S.%f").time()
            moment = datetime.combine(datetime.fromtimestamp(near).date(), clock).timestamp()
            if moment - near > 43200:
                moment -= 86400
            elif near - moment > 43200:
                moment += 86400
            return moment
    return None


def retraining_log(home: Path) -> Path | None:
    logs = sorted((home / "pipeline-runs").glob("*retraining*/run.log"))
    return logs[-1] if logs else None


def phases(report, timeline, home: Path) -> dict[str, float | None]:
    onset = report.drift_onset
    detected = timeline.first("drift", "drift detected")
    succeeded = timeline.first("run", "succeeded")
    log = retraining_log(home)
    steps = task_seconds(log) if log else {}
    gate = sum(s for task, s in steps.items() if task.startswith("gate"))

    def between(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else end - start

    # The demo polls the monitor's gauge once a second and may see the alert (or
    # the launched run) first; drift was detected no later than what it caused.
    seen = [
        t
        for t in (detected.at if detected else None, report.alert_fired, report.run_launched)
        if t is not None
    ]
    detected_at = min(seen) if seen else None
    succeeded_at = succeeded.at if succeeded else None
    # the promote step moves the alias somewhere inside it: from its start, the
    # reload figure is an upper bound (the demo itself only polls the alias)
    promoted_at = (
        task_started_at(log, "promote", report.run_launched)
        if log and report.run_launched
        else None
    )
    first_task_at = (
        task_started_at(log, next(iter(steps)), report.run_launched)
        if steps and report.run_launched
        else None
    )
    return {
        "detection": between(onset, detected_at),
        "alert": between(detected_at, report.alert_fired),
        "trigger": between(report.alert_fired, report.run_launched),
        "pipeline": between(report.run_launched, succeeded_at),
        "worker start (run launched → first task started)": between(
            report.run_launched, first_task_at
        ),
        "gate step": gate if steps else None,
        "reload (promote step start → first answer of new version)": between(
            promoted_at, report.champion_served
        ),
        "total": report.onset_to_new_champion_s,
    }, steps


def run_demo(ctx: Context, alerting: str):
    from driftloop.demo.scenario import DemoOptions, LoopDemo
    from driftloop.demo.sources import traffic_source

    state = ctx.work / f"demo-{alerting}"
    log_path = ctx.logs_dir() / f"demo-{alerting}.log"
    with open(log_path, "w") as log_file:
        demo = LoopDemo(
            DemoOptions(state_dir=state, quick=True, alerting=alerting),
            traffic_source("sentiment"),
            console=Console(file=log_file, width=160, force_terminal=False),
        )
        report = demo.run()
    home = state / "home"
    kept = ctx.logs_dir() / f"retraining-{alerting}.log"
    log = retraining_log(home)
    if log:
        shutil.copy(log, kept)
    result = phases(report, demo.timeline, home)
    shutil.rmtree(state, ignore_errors=True)
    return report, result


def run(ctx: Context) -> None:
    if ctx.budget.quick:
        raise SectionSkipped(
            "the loop trains v1 and runs a retraining pipeline (minutes on 2 cores): "
            "full run only (make bench-loop or make bench)"
        )
    try:
        from driftloop.stack.services import alerting_binaries
    except ImportError as exc:
        raise SectionSkipped(f"driftloop demo/stack not importable: {exc}") from exc
    variants = ["evaluator"] + (["prometheus"] if alerting_binaries() else [])
    task = ctx.progress.add_task("loop (demo runs)", total=len(variants))
    measured: dict[str, dict] = {}
    for alerting in variants:
        ctx.progress.update(task, description=f"loop: demo with {alerting}")
        report, (result, steps) = run_demo(ctx, alerting)
        ctx.progress.advance(task)
        if not report.closed:
            ctx.note(f"{alerting}: the loop did not close: {report.failure}")
        measured[alerting] = result
        if steps:
            ctx.note(
                f"{alerting}: retraining steps (s): "
                + ", ".join(f"{t} {s:.1f}" for t, s in steps.items())
            )
    if "prometheus" not in variants:
        ctx.note("Prometheus/Alertmanager binaries not installed: evaluator variant only")
    for alerting, result in measured.items():
        base = measured.get("evaluator") if alerting == "prometheus" else None
        for phase in PHASES:
            ctx.add(
                f"loop phase: {phase}",
                result[phase],
                "s",
                baseline="same phase, built-in evaluator" if base else "total onset → served",
                baseline_value=(base[phase] if base else result["total"]),
                better="lower",
                headline=phase == "total",
                alerting=alerting,
                demo="quick sizes",
            )
