"""``driftloop import NAME --model PATH --data CSV --target COL``: bring your own model.

The model (a pickled/joblib scikit-learn-compatible pipeline over the raw
columns, or an MLflow model directory with the sklearn flavour) is evaluated
on the test split a trained challenger would be scored on, registered with
lineage, smoke-served, gated against the champion and promoted if it wins
(``driftloop.training.import_model``). Loading a pickle runs code from the
file: import only files you trust.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from driftloop.cli import UserError

STEP_TITLES = {
    "read model": "read model",
    "read data": "read + split data",
    "check model": "check model on the rows",
    "log model": "log model to MLflow",
    "evaluate": "evaluate on test",
    "register": "register version",
    "smoke-serve": "smoke-serve",
    "gate": "gate vs champion",
    "fit drift reference": "fit drift reference",
    "promote": "promote + roll out",
}


class ImportFailed(UserError):
    """A step after the checks failed (the model would not serve, ...): exit status 1."""

    exit_code = 1


def _quiet_mlflow() -> None:
    # the summary is the output; MLflow's INFO lines and artifact progress bars are noise here
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # driftloop logs its models with cloudpickle on purpose (model_logging); alibi-detect
    # announces each folder it saves a detector into
    for name in ("mlflow.sklearn", "alibi_detect"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _progress_printer(console):
    from rich.markup import escape

    def show(event) -> None:
        title = escape(STEP_TITLES.get(event.step, event.step))
        if event.kind == "started":
            console.print(f"  [cyan]▶[/] {title} …")
        elif event.kind == "done":
            console.print(f"  [green]✓[/] {title} [dim]{event.seconds:.1f} s[/]")
            if event.detail:
                console.print(f"    [dim]{escape(event.detail)}[/]")
        else:
            console.print(f"  [red]✗[/] {title} [dim]{event.seconds or 0:.1f} s[/]")

    return show


def _number(value) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def render_summary(console, result) -> None:
    from rich.table import Table

    metrics = Table(title="test split", title_justify="left")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    primary = result.primary_metric
    shown = [primary, *(k for k in sorted(result.test_metrics) if k != primary)]
    for name in shown:
        if name in result.test_metrics:
            label = f"{name} (ranked by)" if name == primary else name
            metrics.add_row(label, _number(result.test_metrics[name]))
    console.print(metrics)

    outcome = Table(title="result", title_justify="left", show_header=False)
    outcome.add_column("", style="bold")
    outcome.add_column("", overflow="fold")
    outcome.add_row("model", f"{result.model_name} version {result.version}")
    outcome.add_row("imported from", f"{result.imported_from} ({result.model_class})")
    rows = ", ".join(f"{split} {count}" for split, count in result.split_rows.items())
    outcome.add_row("rows", rows)
    if result.unused_columns:
        outcome.add_row("not used by the model", ", ".join(result.unused_columns))
    latency = result.smoke.get("latency_ms")
    outcome.add_row("smoke-serve", "ok" + (f", {float(latency):.0f} ms" if latency else ""))
    outcome.add_row("decision", result.decision)
    outcome.add_row("reason", result.reason)
    outcome.add_row("aliases", ", ".join(result.aliases) or "(none)")
    outcome.add_row("mlflow run", result.run_id)
    console.print(outcome)


@click.command("import")
@click.argument("name")
@click.option(
    "--model",
    "model_path",
    required=True,
    metavar="PATH",
    help="Pickle/joblib file of a fitted estimator (a pipeline over the raw columns) or an "
    "MLflow model directory. Loading a pickle runs code: only import files you trust.",
)
@click.option("--data", required=True, metavar="PATH_OR_URL", help="CSV/Parquet table to score on.")
@click.option("--target", metavar="COLUMN", help="Column the model predicts (tabular).")
@click.option(
    "--blueprint",
    "blueprint_name",
    default="tabular",
    show_default=True,
    metavar="NAME",
    help="Blueprint the model is served and gated as.",
)
@click.option(
    "--task",
    type=click.Choice(["auto", "classification", "regression"]),
    help="Kind of problem (tabular; default: auto, decided from the target).",
)
@click.option("--id-column", metavar="COLUMN", help="Column of unique row ids (tabular).")
@click.option("--metric", metavar="NAME", help="Rank and gate by this metric.")
@click.option("--experiment", metavar="NAME", help="MLflow experiment (default: settings).")
@click.option("--seed", type=int, help="Split seed (default: settings; as training uses).")
@click.option(
    "--min-improvement",
    type=click.FloatRange(0.0, 1.0),
    help="Relative gain needed over the champion (default: settings).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_command(
    name: str,
    model_path: str,
    data: str,
    target: str | None,
    blueprint_name: str,
    task: str | None,
    id_column: str | None,
    metric: str | None,
    experiment: str | None,
    seed: int | None,
    min_improvement: float | None,
    as_json: bool,
) -> None:
    """Register a model trained elsewhere as NAME: evaluate, smoke-serve, gate, promote."""
    from rich.console import Console

    from driftloop.blueprints import BlueprintSpec
    from driftloop.blueprints.spec import BlueprintSpecError

    if not data.startswith(("http://", "https://")):
        path = Path(data).expanduser()
        if not path.is_file():
            raise UserError(f"--data: no such file: {data}")
        data = str(path.resolve())
    if not Path(model_path).expanduser().exists():
        raise UserError(f"--model: no such file or directory: {model_path}")
    options = {"target": target, "task": task, "id_column": id_column, "metric": metric}
    try:
        spec = BlueprintSpec(blueprint_name, {k: v for k, v in options.items() if v is not None})
    except (BlueprintSpecError, ValueError) as exc:
        raise UserError(f"--blueprint: {exc}") from None

    _quiet_mlflow()
    from driftloop.settings import get_settings
    from driftloop.training.import_model import ImportStepFailed, ModelImportError, import_model

    console = Console(file=sys.stderr if as_json else sys.stdout, highlight=False)
    console.print(
        f"[bold]driftloop import[/] {Path(model_path).name} → model [bold]{name}[/] "
        f"({blueprint_name}, data {data})"
    )
    try:
        result = import_model(
            name,
            model_path,
            data,
            spec,
            seed=seed,
            experiment=experiment,
            min_improvement=min_improvement,
            settings=get_settings(),
            progress=_progress_printer(console),
        )
    except ModelImportError as exc:
        raise UserError(str(exc)) from None
    except ImportStepFailed as exc:
        raise ImportFailed(str(exc)) from None
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        render_summary(console, result)
