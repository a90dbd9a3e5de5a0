"""``driftloop demo NAME``: the closed loop on this machine, as a timeline."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from driftloop.cli import UserError
from driftloop.demo.state import default_state_dir


class LoopNotClosed(click.ClickException):
    """The demo ran but the loop did not close in time; exit status 1."""

    exit_code = 1

    def show(self, file=None) -> None:  # noqa: D102 - click API
        click.echo(f"driftloop: demo failed: {self.format_message()}", err=True, file=file)


@click.command()
@click.argument("name", metavar="BLUEPRINT")
@click.option(
    "--quick",
    is_flag=True,
    default=lambda: os.environ.get("DRIFTLOOP_DEMO_QUICK", "") not in ("", "0", "false"),
    help="Smaller data for CI (also DRIFTLOOP_DEMO_QUICK=1).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the demo keeps its own registry, store and logs (recreated each run; "
    "default .driftloop/demo-BLUEPRINT).",
)
@click.option(
    "--no-prometheus",
    is_flag=True,
    help="Use the built-in alert evaluator even if Prometheus/Alertmanager are installed.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=10),
    default=None,
    help="Seconds from drift onset to the new champion before giving up "
    "(default 420 with --quick, else 900).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the summary as JSON to this file.",
)
@click.option("--dataset", metavar="NAME", help="tabular: a shipped table (penguins, diabetes).")
@click.option("--data", metavar="PATH_OR_URL", help="tabular: your own CSV or Parquet table.")
@click.option("--target", metavar="COLUMN", help="tabular: the column to predict.")
@click.option("--shift-column", metavar="COLUMN", help="tabular: the numeric column that shifts.")
def demo(
    name: str,
    quick: bool,
    state_dir: Path | None,
    no_prometheus: bool,
    timeout_s: float | None,
    report_path: Path | None,
    **traffic_options: str | None,
) -> None:
    """Train v1, replay traffic, shift it, and watch retraining promote v2 (any BLUEPRINT
    that ships demo traffic: sentiment, tabular, forecast, vision)."""
    from rich.console import Console

    from driftloop.demo.scenario import DemoOptions, LoopDemo, print_summary
    from driftloop.demo.sources import traffic_source
    from driftloop.demo.state import DemoSetupError

    given = {key: value for key, value in traffic_options.items() if value is not None}
    try:
        source = traffic_source(name, **given)
    except TypeError:
        raise UserError(
            f"demo {name}: options {', '.join('--' + k.replace('_', '-') for k in given)} "
            "do not apply to it"
        ) from None
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    # bound to the real stdout now: kfp.local redirects sys.stdout while a pipeline runs
    console = Console(file=sys.stdout)
    state_dir = state_dir or default_state_dir(name)
    options = DemoOptions(
        state_dir=state_dir,
        quick=quick,
        alerting="evaluator" if no_prometheus else "auto",
        loop_timeout_s=timeout_s,
    )
    try:
        report = LoopDemo(options, source, console).run()
    except DemoSetupError as exc:
        raise UserError(str(exc)) from exc
    print_summary(report, console)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_json(), indent=2, default=str))
    if not report.closed:
        raise LoopNotClosed(report.failure or "the loop did not close")
    if report.onset_to_new_champion_s is not None:
        console.print(f"drift onset -> new champion served: {report.onset_to_new_champion_s:.1f}s")
    console.print(f"see the whole run in the web console: {console_command(state_dir, name)}")


def console_command(state_dir: Path, blueprint: str) -> str:
    """What shows this demo's run: `driftloop ui` finds the last demo under the working
    directory by itself; anywhere else it needs the home."""
    from driftloop.demo.state import HOME

    if state_dir == default_state_dir(blueprint):
        return "driftloop ui"
    return f"driftloop ui --home {state_dir.expanduser().resolve() / HOME}"
