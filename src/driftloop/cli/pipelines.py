"""``driftloop pipelines compile|upload|run``: the pipelines as a cluster runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from driftloop.cli import UserError

PIPELINE_NAMES = ("training", "retraining")


def parse_params(pairs: tuple[str, ...]) -> dict[str, object]:
    """``k=v`` pairs; values that parse as JSON numbers/booleans keep their type."""
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param: expected KEY=VALUE, got {pair!r}")
        try:
            parsed = json.loads(value)
            params[key.strip()] = parsed if isinstance(parsed, (int, float, bool)) else value
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _check_params(name: str, params: dict[str, object]) -> None:
    """Unknown parameter names fail here with a list, not as an opaque API error."""
    from pipelines.compile import pipelines as known_pipelines

    accepted = set(known_pipelines()[name].component_spec.inputs or {})
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise UserError(
            f"--param: {name} pipeline has no parameter {', '.join(map(repr, unknown))} "
            f"(parameters: {', '.join(sorted(accepted))})"
        )


def _host() -> str:
    from driftloop.pipelines_client import PipelinesClientError, require_host
    from driftloop.settings import get_settings

    try:
        return require_host(get_settings().resolved_kfp_host)
    except PipelinesClientError as exc:
        raise UserError(str(exc)) from None


def _package(name: str) -> Path:
    from driftloop.pipelines_client import PipelinesClientError, compiled_package

    try:
        return compiled_package(name)
    except PipelinesClientError as exc:
        raise UserError(str(exc)) from None


@click.group()
def pipelines() -> None:
    """Compile the KFP pipelines, upload them, run them on a cluster."""


@pipelines.command("compile")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: pipelines/compiled).",
)
@click.argument("names", nargs=-1, type=click.Choice(PIPELINE_NAMES))
def compile_command(out: Path | None, names: tuple[str, ...]) -> None:
    """Write KFP IR YAML for NAMES (default: all)."""
    from pipelines.compile import DEFAULT_OUT, compile_pipeline

    for name in names or PIPELINE_NAMES:
        click.echo(str(compile_pipeline(name, out or DEFAULT_OUT)))


@pipelines.command("upload")
@click.argument("name", type=click.Choice(PIPELINE_NAMES))
@click.option("--pipeline-name", help="Name in KFP (default: driftloop-NAME).")
def upload(name: str, pipeline_name: str | None) -> None:
    """Upload the compiled NAME pipeline (a new version if it exists)."""
    from driftloop.pipelines_client import upload_pipeline

    host = _host()
    result = upload_pipeline(_package(name), pipeline_name or f"driftloop-{name}", host)
    click.echo(json.dumps(result))


@pipelines.command("run")
@click.argument("name", type=click.Choice(PIPELINE_NAMES))
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Pipeline argument.")
@click.option("--run-name", help="Run name (default: NAME-UTC timestamp).")
@click.option("--experiment", help="KFP experiment (default: settings.experiment).")
def run(name: str, params: tuple[str, ...], run_name: str | None, experiment: str | None) -> None:
    """Create a KFP run of the compiled NAME pipeline."""
    from driftloop.pipelines_client import submit_run
    from driftloop.settings import get_settings

    arguments = parse_params(params)
    _check_params(name, arguments)
    host = _host()
    run_name = run_name or f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    run_id = submit_run(
        _package(name), arguments, run_name, experiment or get_settings().experiment, host
    )
    click.echo(json.dumps({"run_id": run_id, "run_name": run_name, "host": host}))
