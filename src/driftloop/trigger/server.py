"""Run the trigger's HTTP server (uvicorn) with the loopback/token rule enforced."""

from __future__ import annotations

import importlib
import ipaddress
import threading

from driftloop.settings import Settings


class TriggerConfigError(ValueError):
    """The trigger would be reachable from other hosts without a token."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, settings: Settings) -> None:
    if not is_loopback(host) and not settings.trigger_token:
        raise TriggerConfigError(
            f"--host {host} is not a loopback address: set DRIFTLOOP_TRIGGER_TOKEN so only "
            "Alertmanager (with the same bearer token) can launch retraining runs"
        )


def trigger_url(settings: Settings) -> str:
    """Where alert senders (Alertmanager, the built-in evaluator) POST webhooks."""
    if settings.trigger_url:
        return settings.trigger_url
    host = settings.trigger_host if is_loopback(settings.trigger_host) else "127.0.0.1"
    return f"http://{host}:{settings.trigger_port}/alerts"


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from driftloop.trigger.app import create_app
    from driftloop.trigger.launchers import make_launcher
    from driftloop.trigger.service import TriggerService

    check_exposure(host, settings)
    settings.ensure_home()
    # The first webhook asks the registry whether the model exists: MLflow's import
    # (seconds) would otherwise sit between the alert and the launch.
    threading.Thread(
        target=importlib.import_module, args=("driftloop.registry",), daemon=True
    ).start()
    # the running service keeps a warm step host: a retraining starts with the stack imported
    service = TriggerService(settings, launcher=make_launcher(settings, warm_steps=True))
    app = create_app(settings, service)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
