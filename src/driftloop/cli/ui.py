"""``driftloop ui``: the web console on this machine (also started by ``driftloop up``)."""

from __future__ import annotations

import click

from driftloop.cli import UserError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port (default: settings' console_port)."
)
@click.option("--predictor-url", metavar="URL", help="Predictor to ask (default: the stack's).")
@click.option("--monitor-url", metavar="URL", help="Drift monitor (default: the stack's).")
@click.option("--trigger-url", metavar="URL", help="Retrain trigger (default: the stack's).")
@click.option(
    "--prometheus-url",
    metavar="URL",
    help="Prometheus for history (default: settings').",
)
def ui(
    host: str,
    port: int | None,
    predictor_url: str | None,
    monitor_url: str | None,
    trigger_url: str | None,
    prometheus_url: str | None,
) -> None:
    """Serve the web console: models, gate decisions, drift, predictions, runs, AutoML."""
    import uvicorn

    from driftloop.console.app import create_app
    from driftloop.console.config import ConsoleConfig
    from driftloop.settings import get_settings

    settings = get_settings()
    if host not in LOOPBACK_HOSTS and not settings.api_token and not settings.insecure:
        # the console can launch training runs and send feedback: open, it stays on loopback
        raise UserError(
            f"--host {host}: the console is open without a token; set DRIFTLOOP_API_TOKEN "
            "(the predictor's token: the console then asks for it), bind a loopback address, "
            "or set DRIFTLOOP_INSECURE=true to serve it open"
        )
    for option, value in (
        ("--predictor-url", predictor_url),
        ("--monitor-url", monitor_url),
        ("--trigger-url", trigger_url),
        ("--prometheus-url", prometheus_url),
    ):
        if value is not None and not value.startswith(("http://", "https://")):
            raise UserError(f"{option}: not an http(s) URL: {value!r}")
    config = ConsoleConfig.from_settings(
        settings,
        predictor_url=predictor_url,
        monitor_url=monitor_url,
        trigger_url=trigger_url,
        prometheus_url=prometheus_url,
    )
    port = port or settings.console_port
    guarded = "token required" if config.access_token else "open"
    click.echo(
        f"driftloop console on http://{host}:{port}/ ({guarded}; registry {config.tracking_uri})"
    )
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
