"""``driftloop models list|show`` and ``driftloop rollback``: the registry from a terminal."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import click

from driftloop.cli import UserError

PIPED_WIDTH = 240


def _quiet_mlflow() -> None:
    # MLflow logs schema migrations at INFO on stderr; a listing should print a listing
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _sqlite_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    # sqlite:///relative.db and sqlite:////abs/path.db
    return Path(unquote(uri[len("sqlite:///") :]))


def _registry():
    """The registry, or None when the local database has never been created.

    Looking at models must not create an empty MLflow database as a side effect.
    """
    from driftloop.settings import get_settings

    uri = get_settings().resolved_tracking_uri
    path = _sqlite_path(uri)
    if path is not None and not path.is_file():
        return None
    _quiet_mlflow()
    from driftloop.registry import ModelRegistry

    return ModelRegistry(uri)


def _no_database(name: str) -> UserError:
    # same wording as registry.ModelNotFoundError, without importing MLflow (seconds)
    return UserError(f"no registered model named {name!r} (known: none)")


def _score(value: str | None) -> str:
    if value in (None, "", "none"):
        return "-"
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return value


def _console():
    from rich.console import Console

    # piped output (grep, CI logs) has no terminal width; don't truncate to 80 columns
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=PIPED_WIDTH if piped else None, soft_wrap=False)


@click.group()
def models() -> None:
    """Registered models, their versions and aliases."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_models(as_json: bool) -> None:
    """One line per registered model: champion, challenger, previous champion."""
    registry = _registry()
    summaries = registry.list_models() if registry is not None else []
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in summaries], indent=2))
        return
    if not summaries:
        click.echo("no registered models")
        return
    from rich.table import Table

    table = Table(title="registered models")
    for column in ("name", "champion", "challenger", "previous-champion", "latest", "metric"):
        table.add_column(column)
    for s in summaries:
        metric = (
            f"{s.metric_name}={s.metric_value:.4f}"
            if s.metric_name and s.metric_value is not None
            else "-"
        )
        table.add_row(
            s.name,
            s.champion or "-",
            s.challenger or "-",
            s.previous_champion or "-",
            s.latest_version or "-",
            metric,
        )
    _console().print(table)


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(name: str, as_json: bool) -> None:
    """Every version of NAME: aliases, gate decision, scores, lineage."""
    registry = _registry()
    if registry is None:
        raise _no_database(name)
    from driftloop.registry import ModelNotFoundError

    try:
        details = registry.describe(name)
    except ModelNotFoundError as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(details.to_dict(), indent=2))
        return
    from rich.table import Table

    from driftloop.lineage import (
        TAG_CHALLENGER_SCORE,
        TAG_CHAMPION_SCORE,
        TAG_DECISION,
        TAG_GIT_COMMIT,
        TAG_METRIC_NAME,
        TAG_METRIC_VALUE,
        TAG_RESCORED,
        TAG_ROLLED_BACK_AT,
        TAG_ROLLED_BACK_REASON,
        TAG_TEST_FINGERPRINT,
        TAG_TRAIN_FINGERPRINT,
    )

    table = Table(title=f"{name}  ({len(details.versions)} versions)")
    for column in ("version", "aliases"):
        table.add_column(column, no_wrap=True)
    for column in (
        "decision",
        "gate score",
        "champion score",
        "metric",
        "test split",
        "train split",
        "commit",
        "created",
    ):
        table.add_column(column)
    for v in reversed(details.versions):
        decision = v.tag(TAG_DECISION) or "-"
        if v.tag(TAG_ROLLED_BACK_AT):
            decision += f" (rolled back: {v.tag(TAG_ROLLED_BACK_REASON) or '?'})"
        metric_name, metric_value = v.tag(TAG_METRIC_NAME), v.tag(TAG_METRIC_VALUE)
        table.add_row(
            v.version,
            ", ".join(v.aliases) or "-",
            decision,
            _score(v.tag(TAG_CHALLENGER_SCORE)),
            _score(v.tag(TAG_CHAMPION_SCORE))
            + (" (re-scored)" if v.tag(TAG_RESCORED) == "true" else ""),
            f"{metric_name}={_score(metric_value)}" if metric_name else "-",
            (v.tag(TAG_TEST_FINGERPRINT) or "-")[:12],
            (v.tag(TAG_TRAIN_FINGERPRINT) or "-")[:12],
            (v.tag(TAG_GIT_COMMIT) or "-")[:12],
            v.created.strftime("%Y-%m-%d %H:%M:%S"),
        )
    _console().print(table)


@click.command()
@click.argument("name")
@click.option(
    "--reason", default="manual", show_default=True, help="Recorded on the demoted version."
)
@click.option(
    "--roll-out/--no-roll-out",
    default=True,
    show_default=True,
    help="Also make the serving target serve the restored version.",
)
def rollback(name: str, reason: str, roll_out: bool) -> None:
    """Make NAME's previous champion the champion again."""
    if not reason.strip():
        raise UserError("--reason must not be empty")
    registry = _registry()
    if registry is None:
        raise _no_database(name)
    from driftloop.registry import ModelNotFoundError, RollbackError

    try:
        demoted = registry.aliases(name).get("champion")
        restored = registry.rollback(name, reason)
    except (ModelNotFoundError, RollbackError) as exc:
        raise UserError(str(exc)) from None
    click.echo(
        f"{name}: champion is version {restored} again (demoted version {demoted}: {reason})"
    )
    if not roll_out:
        return
    from driftloop.deploy import DeployError, get_deployer
    from driftloop.settings import get_settings

    try:
        result = get_deployer(get_settings()).roll_out(name, restored)
    except DeployError as exc:
        raise UserError(f"registry rolled back, but the rollout failed: {exc}") from None
    click.echo(f"rollout: {result.status} -- {result.message}")
