"""``driftloop ui``: the web console on this machine (also started by ``driftloop up``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from driftloop.cli import UserError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# set by the user, these say which registry and home to show: never second-guessed
WHERE_VARIABLES = ("MLFLOW_TRACKING_URI", "DRIFTLOOP_HOME", "DRIFTLOOP_TRACKING_URI")


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
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    help="A driftloop home to show (its registry, store, ledger and kept history), e.g. a "
    "demo's STATE_DIR/home. Default: DRIFTLOOP_HOME; with nothing set and no stack running, "
    "the last `driftloop demo` run from this directory if it is newer than ~/.driftloop.",
)
def ui(
    home: Path | None,
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
    home = home or last_demo_home(settings)
    if home is not None:
        if not home.is_dir():
            raise UserError(f"--home {home}: no such directory")
        settings = shown_home(settings, home)
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


def last_demo_home(settings) -> Path | None:  # noqa: ANN001 - driftloop.settings.Settings
    """The last demo's home, when nothing says what to show and it is the newest loop here:
    the user ran `driftloop demo` (its stack is stopped) and now opens the console."""
    from driftloop.demo.state import demo_homes
    from driftloop.stack.services import ORDER
    from driftloop.stack.supervisor import Stack

    if any(os.environ.get(name) for name in WHERE_VARIABLES):
        return None
    homes = demo_homes()
    if not homes:
        return None
    own_registry = settings.home / "mlflow.db"
    own_stack = Stack(settings, alerting="none")
    if any(own_stack.running_pid(name) for name in ORDER) or (
        own_registry.is_file()
        and own_registry.stat().st_mtime > (homes[0] / "mlflow.db").stat().st_mtime
    ):
        return None  # the user's own stack or registry is the newer loop
    click.echo(
        f"showing the last demo ({homes[0].resolve()}): nothing set in "
        f"{', '.join(WHERE_VARIABLES)} and {settings.home} holds no newer loop; "
        f"--home chooses another"
    )
    return homes[0].resolve()


def shown_home(settings, home: Path):  # noqa: ANN001, ANN201 - driftloop.settings.Settings
    """Settings reading ``home``'s own registry and store; a registry or store the user
    named (MLFLOW_TRACKING_URI, DRIFTLOOP_TRACKING_URI, DRIFTLOOP_STORE_URL) is kept."""
    home = home.resolve()
    registry = home / "mlflow.db"
    update: dict = {"home": home}
    named_registry = os.environ.get("MLFLOW_TRACKING_URI") or os.environ.get(
        "DRIFTLOOP_TRACKING_URI"
    )
    if not named_registry and registry.is_file():
        update["tracking_uri"] = f"sqlite:///{registry}"
    if not os.environ.get("DRIFTLOOP_STORE_URL"):
        update["store_url"] = None  # the home's own store.db
    return settings.model_copy(update=update)
