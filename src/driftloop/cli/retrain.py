"""``driftloop retrain NAME [--param NAME=VALUE ...] [--trigger URL]``: launch the retraining
pipeline now.

The run starts in the background through the trigger's launcher (a worker process with
kfp.local, or Kubeflow Pipelines), recorded in the trigger's ledger like an alert's run
(``GET /runs`` on the trigger shows it); this command returns once it has started. The
champion's blueprint and data are retrained; ``--param`` overrides blueprint options for
this run and is recorded on the new version.

With ``--trigger URL`` (or ``DRIFTLOOP_TRIGGER_URL``, the address alerts are posted to) the
command asks that running trigger over HTTP -- its authenticated ``POST /retrain``, with the
bearer token from ``DRIFTLOOP_TRIGGER_TOKEN`` -- instead of launching here: the run then
belongs to the trigger's ledger and launcher (a stack's, a cluster's).
"""

from __future__ import annotations

import json
from typing import Any

import click

from driftloop.cli import UserError
from driftloop.cli.train import parse_params

RETRAIN_TIMEOUT_S = 60.0  # the trigger answers once the run has started (or was refused)


@click.command()
@click.argument("model_name", metavar="NAME")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A blueprint option for this run, recorded on the version (repeatable).",
)
@click.option(
    "--trigger",
    "trigger",
    metavar="URL",
    default=None,
    help="Ask the trigger at URL (POST /retrain, token from DRIFTLOOP_TRIGGER_TOKEN) instead "
    "of launching here. Default: DRIFTLOOP_TRIGGER_URL when set.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def retrain(model_name: str, params: tuple[str, ...], trigger: str | None, as_json: bool) -> None:
    """Launch a retraining run of model NAME in the background."""
    from driftloop.settings import get_settings

    options = parse_params(params)
    settings = get_settings()
    url = trigger or settings.trigger_url
    if url:
        decision = retrain_via_trigger(url, model_name, options, settings.trigger_token)
        if as_json:
            click.echo(json.dumps(decision, indent=2))
        else:
            click.echo(f"launched {decision['run_id']} on {url}: {decision['reason']}")
        return
    _retrain_here(model_name, options, as_json, settings)


def retrain_endpoint(url: str) -> str:
    """The trigger's ``/retrain`` from its base URL or its alert webhook URL (``/alerts``)."""
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--trigger: expected an http(s) URL of the trigger, got {url!r}")
    base = url.rstrip("/")
    base = base.removesuffix("/alerts")
    return f"{base}/retrain"


def retrain_via_trigger(
    url: str, model_name: str, options: dict[str, Any], token: str | None
) -> dict[str, Any]:
    """``POST /retrain`` on the trigger at ``url``; its decision (JSON) when it launched.

    Every refusal is one ``UserError`` naming what to change: the token (401), the model
    (404, or 409 while a run is in flight), a ``--param`` (422), or the URL (unreachable).
    """
    import httpx

    endpoint = retrain_endpoint(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.post(
            endpoint,
            json={"model": model_name, "params": options},
            headers=headers,
            timeout=RETRAIN_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise UserError(f"--trigger: cannot reach {endpoint}: {exc}") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or body.get("reason") or answer.text[:200])
    if answer.status_code == 202:
        return body
    if answer.status_code == 401:
        what = "the token in DRIFTLOOP_TRIGGER_TOKEN" if token else "no DRIFTLOOP_TRIGGER_TOKEN"
        raise UserError(f"--trigger: {endpoint} refused {what} (401: {detail})")
    if answer.status_code == 422:
        message = detail.removeprefix("params: ")
        raise UserError(message if message.startswith("--param") else f"--param: {message}")
    if answer.status_code in (404, 409):
        raise UserError(f"NAME: {detail}")
    raise UserError(f"--trigger: {endpoint} answered {answer.status_code}: {detail}")


def _retrain_here(model_name: str, options: dict[str, Any], as_json: bool, settings) -> None:
    from driftloop.trigger.service import TriggerService

    service = TriggerService(settings)
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
            click.echo(json.dumps(decision.to_json(), indent=2))
            return
        click.echo(f"launched {decision.run_id}: {decision.reason}")
        run_dir = getattr(service.launcher, "run_dir", None)
        if run_dir is not None:
            click.echo(f"  log: {run_dir(decision.run_id) / 'worker.log'}")
    finally:
        # the ledger only: closing the launcher would stop the run just started
        service.ledger.dispose()
