"""``driftloop monitor NAME``: watch a model's traffic for drift."""

from __future__ import annotations

from pathlib import Path

import click

from driftloop.cli import UserError


@click.command()
@click.argument("name")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="HTTP port (default 8090)."
)
@click.option(
    "--host", default=None, help="Bind address (default 127.0.0.1; 0.0.0.0 in a sidecar)."
)
@click.option(
    "--alias",
    type=click.Choice(["champion", "challenger", "previous-champion"]),
    default="champion",
    show_default=True,
    help="Registry alias whose version is watched.",
)
@click.option(
    "--window", type=click.IntRange(10, None), default=None, help="Events per drift window."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Detector config YAML (default: built-in).",
)
@click.option(
    "--fit-reference",
    "reference_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Instead of serving: fit the drift reference of --version from this parquet and exit.",
)
@click.option("--version", "version", default=None, help="Model version for --fit-reference.")
@click.option(
    "--evaluate-alerts",
    is_flag=True,
    help="Instead of serving: run the built-in alert evaluator against the monitor's /metrics.",
)
@click.option(
    "--webhook-url", default=None, help="Evaluator: Alertmanager-format webhook receiver."
)
@click.option(
    "--alert-for",
    default="1m",
    show_default=True,
    help="Evaluator: how long a condition must hold before its alert fires (Prometheus duration).",
)
def monitor(
    name,
    port,
    host,
    alias,
    window,
    config_path,
    reference_path,
    version,
    evaluate_alerts,
    webhook_url,
    alert_for,
):
    """Serve the drift monitor for model NAME (payload CloudEvents in, /metrics out)."""
    from driftloop.cli.threads import default_to_one_math_thread

    default_to_one_math_thread()  # before the imports below load numpy and torch
    from driftloop.monitor.config import ConfigError, load_config
    from driftloop.settings import get_settings

    settings = get_settings()
    updates = {}
    if window is not None:
        updates["monitor_window"] = window
    if config_path is not None:
        updates["monitor_config"] = config_path
    if webhook_url is not None:
        updates["evaluator_webhook_url"] = webhook_url
    settings = settings.model_copy(update=updates)
    try:
        load_config(settings=settings)
    except ConfigError as exc:
        raise UserError(f"--config: {exc}") from None

    if reference_path is not None:
        _fit(name, version, reference_path, settings)
        return
    if evaluate_alerts:
        from driftloop.monitor.evaluator import run_evaluator
        from driftloop.monitor.rules import parse_duration

        try:
            parse_duration(alert_for)
        except ValueError as exc:
            raise UserError(f"--alert-for: {exc}") from None
        metrics_url = f"http://{host or '127.0.0.1'}:{port or settings.monitor_port}/metrics"
        run_evaluator(settings, metrics_url=metrics_url, for_duration=alert_for)
        return
    from driftloop.monitor.server import serve_monitor

    serve_monitor(name, settings, host=host, port=port, alias=alias)


def _fit(name: str, version: str | None, reference_path: Path, settings) -> None:
    from driftloop.monitor.reference import ReferenceError, fit_reference
    from driftloop.registry import RegistryError

    if version is None:
        raise UserError("--fit-reference needs --version")
    try:
        uri = fit_reference(name, version, reference_path, settings)
    except (ReferenceError, RegistryError) as exc:
        raise UserError(f"--fit-reference: {exc}") from None
    click.echo(uri)
