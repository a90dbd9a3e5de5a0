"""``driftloop report stability NAME[@ALIAS|/VERSION]``: how much a version's score moves;
``driftloop report drift NAME[@ALIAS|/VERSION] --out FILE.html``: how its traffic drifted.

The stability analysis lives in :mod:`driftloop.training.stability`, the drift page in
:mod:`driftloop.console.drift_report`; this module finds the version, shows progress,
prints the tables and says where the files went.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from driftloop.cli import UserError


@click.group()
def report() -> None:
    """Reports on registered model versions."""


def _no_database(uri: str) -> bool:
    """True when the local MLflow database does not exist (asking must not create it)."""
    if not uri.startswith("sqlite:///"):
        return False
    return not Path(uri[len("sqlite:///") :]).is_file()


def _seed(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _count_option(name: str, low: int, high: int, help_text: str, default: int = 5):
    """A whole-number option in [low, high] with a shown default (the report's counts)."""
    return click.option(
        name,
        type=click.IntRange(low, high),
        default=default,
        show_default=True,
        help=help_text,
    )


@report.command("stability")
@click.argument("reference", metavar="NAME[@ALIAS|/VERSION]")
@_count_option("--splits", 2, 100, "Resampled train/validation splits to refit on.")
@_count_option("--seeds", 2, 100, "Seeds to refit with on the original split.")
@click.option(
    "--param",
    metavar="NAME",
    help="Hyperparameter to sweep (default: the candidate's first numeric one).",
)
@_count_option("--points", 2, 25, "Values of the swept hyperparameter across its range.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PNG (default: NAME-vVERSION-stability.png here).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def stability(
    reference: str,
    splits: int,
    seeds: int,
    param: str | None,
    points: int,
    out: Path | None,
    as_json: bool,
) -> None:
    """Refit a version across resampled splits, seeds and one hyperparameter; table + PNG.

    NAME alone means NAME@champion. The rows are rebuilt from the version's
    tags and split as training split them; the test split is not used. The
    table, a CSV and the PNG are logged under stability/ on the version's run.
    """
    from rich.console import Console

    from driftloop.settings import get_settings
    from driftloop.training.stability import StabilityError, VersionReference

    console = Console(file=sys.stderr if as_json else sys.stdout, highlight=False)
    settings = get_settings()
    uri = settings.resolved_tracking_uri
    try:
        wanted = VersionReference.parse(reference)
        if _no_database(uri):
            raise StabilityError(f"NAME: no registered model named {wanted.name!r} (known: none)")
        result, png, logged = _analyse(console, wanted, settings, param, splits, seeds, points, out)
    except StabilityError as exc:
        raise UserError(str(exc)) from None

    if as_json:
        click.echo(
            json.dumps(
                result.to_dict() | {"png": str(png), "artifacts": logged}, indent=2, default=str
            )
        )
        return
    _render(console, result)
    console.print(f"plot: {png}")
    if logged:
        console.print(f"logged on run {result.run_id}: {', '.join(logged)}")
    else:
        console.print("not logged: the version has no training run", style="yellow")


def _analyse(console, wanted, settings, param, splits, seeds, points, out):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sklearn.base import clone

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from driftloop.lineage import TAG_BEST_CANDIDATE, TAG_SEED
    from driftloop.registry import ModelRegistry
    from driftloop.training.stability import (
        StabilityError,
        StabilityReport,
        analyse,
        choose_param,
        find_version,
        log_to_run,
        planned_fits,
        plot,
        run_tags,
        training_rows,
    )

    uri = settings.resolved_tracking_uri
    registry = ModelRegistry(uri)
    version = find_version(registry, wanted)
    safe_name = version.name.replace("/", "_")
    png = out or Path(f"{safe_name}-v{version.version}-stability.png")
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StabilityError(f"--out: cannot create {png.parent}: {exc.strerror}") from None
    rows = training_rows(version)
    blueprint = rows.blueprint
    # the training run's tags, with the version's own (newer pipelines copy them) on top
    tags = run_tags(version.run_id, uri) | version.tags
    candidate = tags.get(TAG_BEST_CANDIDATE)
    template = clone(registry.load_sklearn(version.name, version.version))

    report = StabilityReport(
        model=version.name,
        version=version.version,
        run_id=version.run_id,
        blueprint=blueprint.spec.to_text(),
        candidate=candidate,
        metric=blueprint.primary_metric,
        greater_is_better=blueprint.greater_is_better,
        notes=list(rows.notes),
    )
    space = blueprint.tuning_space(candidate) if candidate else {}
    if param is not None and not candidate:
        raise StabilityError(
            f"--param: the version's run names no candidate ({TAG_BEST_CANDIDATE}), "
            "so there is no tuning space to sweep"
        )
    sweep = choose_param(space, param, candidate)
    if sweep is not None and sweep[0] not in template.get_params(deep=True):
        if param is not None:
            raise StabilityError(
                f"--param: the registered model has no parameter {sweep[0]!r} "
                f"(candidate {candidate!r} was changed after the search?)"
            )
        report.notes.append(f"sweep skipped: the registered model has no parameter {sweep[0]!r}")
        sweep = None
    elif sweep is None and candidate:
        report.notes.append(f"sweep skipped: candidate {candidate} has no numeric hyperparameter")
    elif sweep is None:
        report.notes.append(
            f"sweep skipped: the version names no candidate ({TAG_BEST_CANDIDATE}) to take "
            "a tuning space from"
        )

    console.print(
        f"[bold]stability[/] of {version.name} version {version.version} "
        f"({candidate or 'model'}, {blueprint.primary_metric}): "
        f"{len(rows.train)} train + {len(rows.val)} validation rows"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        current = template.get_params(deep=True).get(sweep[0]) if sweep else None
        total = planned_fits(splits, seeds, sweep, points, current)
        task = progress.add_task("refitting", total=total)
        try:
            analyse(
                blueprint,
                template,
                rows.train,
                rows.val,
                report=report,
                splits=splits,
                seeds=seeds,
                base_seed=_seed(tags.get(TAG_SEED), settings.seed),
                sweep=sweep,
                points=points,
                progress=lambda done: progress.update(
                    task, advance=1, description=f"refit: {done}"
                ),
            )
        except StabilityError:
            raise
        except (ValueError, TypeError, RuntimeError) as exc:
            # a refit that fails on rows the version once trained on: say which, in one line
            raise StabilityError(
                f"NAME: refitting {version.name} version {version.version} failed: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
    plot(report, png)
    logged = log_to_run(report, png, uri)
    return report, png, logged


def _render(console, report) -> None:
    from rich.table import Table

    direction = "higher" if report.greater_is_better else "lower"
    table = Table(
        title=f"{report.model} v{report.version}: {report.metric} ({direction} is better)",
        title_justify="left",
    )
    table.add_column("analysis")
    for column in ("runs", "mean", "std", "min", "max"):
        table.add_column(column, justify="right")
    for row in report.summary():
        table.add_row(
            row["analysis"],
            str(row["runs"]),
            *(f"{row[key]:.4f}" for key in ("mean", "std", "min", "max")),
        )
    console.print(table)
    if report.param_scores:
        swept = Table(title=f"sweep of {report.param}", title_justify="left")
        swept.add_column(report.param or "value", justify="right")
        swept.add_column(report.metric, justify="right")
        swept.add_column("")
        for value, score in zip(report.param_values, report.param_scores, strict=True):
            mark = "this version" if _same(value, report.param_current) else ""
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            swept.add_row(shown, f"{score:.4f}", mark)
        console.print(swept)
    for note in report.notes:
        console.print(f"note: {note}", style="dim")


def _same(value, current) -> bool:
    if isinstance(value, float) and isinstance(current, (int, float)):
        return abs(value - current) <= 1e-9 * max(1.0, abs(current))
    return value == current


@report.command("drift")
@click.argument("reference", metavar="NAME[@ALIAS|/VERSION]")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the self-contained HTML page.",
)
@_count_option("--window", 10, 100_000, "Instances per tested window.", default=200)
@_count_option("--windows", 1, 1000, "How many of the newest windows to test.", default=10)
@click.option("--json", "as_json", is_flag=True, help="Also print the report as JSON.")
def drift(reference: str, out: Path, window: int, windows: int, as_json: bool) -> None:
    """Test the newest stored traffic of a version against its drift reference; one HTML page
    with per-window detector statistics and the features that moved.

    NAME alone means NAME@champion. The traffic is the prediction store's (what the
    predictor recorded for that version); the detectors are the version's own.
    """
    from driftloop.console.drift_report import DriftReportError, build_report, render_html
    from driftloop.console.store_view import recent_predictions
    from driftloop.registry import ModelRegistry, RegistryError
    from driftloop.settings import get_settings
    from driftloop.training.stability import StabilityError, VersionReference, find_version

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    settings = get_settings()
    uri = settings.resolved_tracking_uri
    try:
        wanted = VersionReference.parse(reference)
        if _no_database(uri):
            raise DriftReportError(f"NAME: no registered model named {wanted.name!r} (known: none)")
        version = find_version(ModelRegistry(uri), wanted)
        stored = recent_predictions(
            settings.resolved_store_url,
            version.name,
            limit=window * windows,
            version=str(version.version),
        )
        report = build_report(
            version.name, version, list(reversed(stored)), window=window, tracking_uri=uri
        )
    except (DriftReportError, StabilityError, RegistryError) as exc:
        raise UserError(str(exc)) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out: cannot write {out}: {exc.strerror}") from None
    flagged = sum(1 for w in report.windows if w["drift"])
    moved = [m["feature"] for m in report.moved if m["moved"]]
    if as_json:
        click.echo(json.dumps(report.to_dict() | {"html": str(out)}, indent=2, default=str))
        return
    click.echo(
        f"{version.name} v{version.version}: {flagged} of {len(report.windows)} windows of "
        f"{window} flagged; moved: {', '.join(moved[:10]) or 'none'}"
    )
    click.echo(f"report: {out}")
