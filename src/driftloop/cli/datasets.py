"""``driftloop datasets list|show``: the datasets MLflow has seen, and who used them.

Every training run (and ``driftloop import``) logs its splits with
``mlflow.log_input``; these commands read them back across experiments
(``driftloop.registry_datasets``) with the runs and model versions that used each.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from urllib.parse import unquote

import click

from driftloop.cli import UserError

PIPED_WIDTH = 240
SHORT_DIGEST = 12


def _catalog():
    """The catalogue, or None when the local MLflow database was never created.

    Listing must not create an empty database as a side effect.
    """
    from driftloop.settings import get_settings

    uri = get_settings().resolved_tracking_uri
    if uri.startswith("sqlite:///") and not Path(unquote(uri[len("sqlite:///") :])).is_file():
        return None
    # MLflow logs schema migrations at INFO on stderr; a listing should print a listing
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from driftloop.registry_datasets import DatasetCatalog

    return DatasetCatalog(uri)


def _console():
    from rich.console import Console

    # piped output (grep, CI logs) has no terminal width; don't truncate to 80 columns
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPED_WIDTH if piped else None, soft_wrap=False, highlight=False)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def datasets() -> None:
    """Datasets logged with MLflow runs (mlflow.log_input) and the runs/versions using them."""


@datasets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_datasets(as_json: bool) -> None:
    """One line per dataset (name + digest), most recently used first."""
    catalog = _catalog()
    records = catalog.datasets() if catalog is not None else []
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        click.echo("no datasets logged yet (training runs log their splits with mlflow.log_input)")
        return
    from rich.table import Table

    table = Table(title="datasets", title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("digest", "left"),
        ("source", "left"),
        ("rows", "right"),
        ("cols", "right"),
        ("runs", "right"),
        ("versions", "left"),
        ("last used (UTC)", "left"),
    ):
        table.add_column(column, justify=justify)
    for record in records:
        table.add_row(
            record.name,
            record.digest[:SHORT_DIGEST],
            record.source,
            _count(record.rows),
            _count(record.columns),
            str(len(record.runs)),
            ", ".join(map(str, record.versions)) or "-",
            _when(record.last_used),
        )
    _console().print(table)


@datasets.command("show")
@click.argument("key", metavar="NAME|DIGEST")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def show_dataset(key: str, as_json: bool) -> None:
    """Schema, profile, source and every run and model version that used a dataset."""
    from driftloop.registry_datasets import DatasetNotFoundError

    catalog = _catalog()
    if catalog is None:
        raise UserError(f"no dataset named {key!r} or with that digest (known: none)")
    try:
        records = catalog.find(key)
    except DatasetNotFoundError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    console = _console()
    for record in records:
        _show_one(console, record)


def _show_one(console, record) -> None:
    from rich.table import Table

    about = Table(title=f"dataset {record.name}", title_justify="left", show_header=False)
    about.add_column("", style="bold")
    about.add_column("")
    about.add_row("digest", record.digest)
    about.add_row("source", f"{record.source} ({record.source_type or 'unknown type'})")
    about.add_row("rows", _count(record.rows))
    about.add_row("columns", _count(record.columns))
    for key, value in sorted(record.profile.items()):
        if key != "num_rows":
            about.add_row(f"profile {key}", str(value))
    about.add_row("versions", ", ".join(map(str, record.versions)) or "(none)")
    console.print(about)

    if record.schema:
        schema = Table(title="schema", title_justify="left")
        schema.add_column("column")
        schema.add_column("type")
        for column in record.schema:
            schema.add_row(column["name"], column["type"])
        console.print(schema)

    uses = Table(title="used by", title_justify="left")
    for column in ("run", "run name", "experiment", "context", "started (UTC)", "versions"):
        uses.add_column(column)
    for use in record.uses:
        uses.add_row(
            use.run_id,
            use.run_name,
            use.experiment,
            use.context or "-",
            _when(use.started),
            ", ".join(map(str, use.versions)) or "-",
        )
    console.print(uses)
