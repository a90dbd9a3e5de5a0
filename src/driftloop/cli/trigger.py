"""``driftloop trigger``: the Alertmanager webhook receiver that launches retraining."""

from __future__ import annotations

import click

from driftloop.cli import UserError


@click.command()
@click.option("--host", default=None, help="Address to bind (default: settings.trigger_host).")
@click.option("--port", type=int, default=None, help="Port (default: settings.trigger_port, 8095).")
def trigger(host: str | None, port: int | None) -> None:
    """Receive Alertmanager webhooks and launch retraining runs."""
    from driftloop.settings import get_settings
    from driftloop.trigger.server import TriggerConfigError, serve

    settings = get_settings()
    host = host or settings.trigger_host
    port = settings.trigger_port if port is None else port
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    try:
        serve(settings, host, port)
    except TriggerConfigError as exc:
        raise UserError(str(exc)) from exc
