"""Run the monitor under uvicorn in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal

from driftloop.settings import Settings

# uvicorn's own limit on waiting for requests in flight once a stop is asked for
GRACEFUL_SHUTDOWN_S = 5


def serve_monitor(
    model_name: str,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    alias: str = "champion",
) -> None:
    """Serve until asked to stop; a stop by SIGTERM ends with exit status 0."""
    import uvicorn

    from driftloop.monitor.app import create_app
    from driftloop.monitor.service import MonitorService

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # uvicorn handles the signal while it serves, shuts down gracefully, then
    # re-raises it under the handler found before it started. Left at the
    # default, that re-raise kills the process (status -15) after a clean stop,
    # which a supervisor cannot tell from a crash.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    service = MonitorService(model_name, settings, alias=alias)
    uvicorn.run(
        create_app(service),
        host=host or settings.monitor_host,
        port=port or settings.monitor_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def _exit_cleanly(signum, frame) -> None:  # noqa: ARG001 - the signal handler signature
    raise SystemExit(0)
