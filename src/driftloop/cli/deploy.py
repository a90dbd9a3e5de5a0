"""``driftloop deploy NAME --version V``: roll a registry version out.

The target (embedded stack or Kubernetes) comes from settings
(``DRIFTLOOP_TARGET``); :func:`driftloop.deploy.get_deployer` picks the
implementation. Exit status 0 when the version is served (or no local
predictor is running to wait for), 1 when it did not become ready in time,
2 for errors the user can fix.
"""

from __future__ import annotations

import json

import click

from driftloop.cli import UserError


@click.command("deploy")
@click.argument("name")
@click.option("--version", "version", required=True, help="Registered model version to serve.")
@click.option(
    "--model-uri",
    default=None,
    help="URI to serve instead of models:/NAME/VERSION (e.g. models:/NAME@champion).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds to wait for the rollout (default: 60 local, 300 kubernetes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def deploy(name: str, version: str, model_uri: str | None, timeout_s: float | None, as_json: bool):
    """Serve version VERSION of model NAME and wait until it is live."""
    from driftloop.deploy import DeployError, get_deployer
    from driftloop.settings import get_settings

    if not name.strip():
        raise UserError("NAME must not be empty")
    if not version.strip():
        raise UserError("--version must not be empty")
    if model_uri is not None and "://" not in model_uri and not model_uri.startswith("models:/"):
        raise UserError(f"--model-uri {model_uri!r} is not a URI (expected e.g. models:/NAME/1)")
    options = {} if timeout_s is None else {"timeout_s": timeout_s}
    try:
        result = get_deployer(get_settings(), **options).roll_out(name, version, model_uri)
    except DeployError as exc:
        raise UserError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(f"{result.target} [{result.status}] {result.message}")
    if result.status == "timeout":
        raise click.exceptions.Exit(1)
