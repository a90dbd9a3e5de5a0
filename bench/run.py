"""Run the benchmark suite, or one section of it.

    python -m bench.run                       # everything, full durations (< 20 min)
    python -m bench.run --quick               # everything, short (< 3 min)
    python -m bench.run --section serving --quick --out DIR

Writes DIR/results.json (every figure with baseline, ratio, unit, machine and
date), DIR/results.md (the tables) and DIR/*.png (the scale plots).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console

from bench.context import (
    Budget,
    Context,
    SectionSkipped,
    make_progress,
    remove_scratch,
    scratch_dir,
)
from bench.fixtures import driftloop_home
from bench.results import Results, SectionOutcome

# section name -> module in bench/ with run(ctx); the order they run in
SECTIONS: dict[str, str] = {
    "serving": "bench.serving",
    "drift": "bench.drift",
    "loop": "bench.loop",
    "pipelines": "bench.orchestration",
    "scale": "bench.scale",
    "automl": "bench.automl",
    "recsys": "bench.recsys",
    "vision": "bench.vision",
    "soak": "bench.soak",
    "forecast": "bench.forecast",
    "blueprints": "bench.blueprints",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--section",
        action="append",
        choices=[*SECTIONS, "all"],
        default=None,
        help="section to run (repeatable; default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer sizes, shorter runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument(
        "--keep-scratch",
        action="store_true",
        help="keep the scratch DRIFTLOOP_HOME and model folders",
    )
    args = parser.parse_args(argv)
    requested = args.section or ["all"]
    args.sections = list(SECTIONS) if "all" in requested else list(dict.fromkeys(requested))
    return args


def run_sections(args: argparse.Namespace, console: Console | None = None) -> Results:
    console = console or Console(stderr=True)
    results = Results(quick=args.quick)
    budget = Budget(quick=args.quick)
    work = scratch_dir()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with driftloop_home(work / "home"), make_progress(console) as progress:
            overall = progress.add_task("benchmarks", total=len(args.sections))
            ctx = Context(
                out=args.out,
                results=results,
                budget=budget,
                console=console,
                progress=progress,
                work=work,
            )
            for name in args.sections:
                ctx.section = name
                shutil.rmtree(ctx.logs_dir(), ignore_errors=True)  # no stale error.txt
                started = time.perf_counter()
                progress.update(overall, description=f"benchmarks: {name}")
                try:
                    importlib.import_module(SECTIONS[name]).run(ctx)
                    outcome = SectionOutcome("ok", time.perf_counter() - started)
                except SectionSkipped as exc:
                    outcome = SectionOutcome("skipped", time.perf_counter() - started, str(exc))
                except Exception as exc:  # one broken section must not lose the others' figures
                    (ctx.logs_dir() / "error.txt").write_text(traceback.format_exc())
                    outcome = SectionOutcome(
                        "failed", time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
                    )
                results.sections[name] = outcome
                console.print(
                    f"{name}: {outcome.status} in {outcome.seconds:.0f} s"
                    + (f" ({outcome.reason})" if outcome.reason else "")
                )
                results.write(args.out)  # partial results survive an interrupted run
                progress.advance(overall)
    finally:
        if args.keep_scratch:
            console.print(f"scratch kept at {work}")
        else:
            remove_scratch(work)
    return results


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every server this run started is stopped."""

    def handler(signum, frame):  # noqa: ARG001 - signal API
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    console = Console(stderr=True)
    results = run_sections(args, console)
    json_path, md_path = results.write(args.out)
    console.print(f"wrote {json_path} and {md_path}")
    failed = [name for name, o in results.sections.items() if o.status == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
