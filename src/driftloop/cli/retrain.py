"""``driftloop retrain NAME [--param NAME=VALUE ...]``: launch the retraining pipeline now.

The run starts in the background through the trigger's launcher (a worker process with
kfp.local, or Kubeflow Pipelines), recorded in the trigger's ledger like an alert's run
(``GET /runs`` on the trigger shows it); this command returns once it has started. The
champion's blueprint and data are retrained; ``--param`` overrides blueprint options for
this run and is recorded on the new version. The trigger's ``POST /retrain`` does the same
over HTTP.
"""

from __future__ import annotations

import click

from driftloop.cli import UserError
from driftloop.cli.train import parse_params


@click.command()
@click.argument("model_name", metavar="NAME")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A blueprint option for this run, recorded on the version (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def retrain(model_name: str, params: tuple[str, ...], as_json: bool) -> None:
    """Launch a retraining run of model NAME in the background."""
    from driftloop.settings import get_settings
    from driftloop.trigger.service import TriggerService

    options = parse_params(params)
    service = TriggerService(get_settings())
    try:
        try:
            decision = service.retrain(model_name, options)
        except ValueError as exc:
            message = str(exc)
            named = message if message.startswith("--param") else f"--param: {message}"
            raise UserError(named) from None
        if decision.outcome != "launched":
            raise UserError(f"NAME: {decision.reason}")
        if as_json:
            import json

            click.echo(json.dumps(decision.to_json(), indent=2))
            return
        click.echo(f"launched {decision.run_id}: {decision.reason}")
        run_dir = getattr(service.launcher, "run_dir", None)
        if run_dir is not None:
            click.echo(f"  log: {run_dir(decision.run_id) / 'worker.log'}")
    finally:
        # the ledger only: closing the launcher would stop the run just started
        service.ledger.dispose()
