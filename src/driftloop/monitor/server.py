"""Run the monitor in the foreground until SIGTERM or Ctrl-C (exit status 0 either way)."""

from __future__ import annotations

import logging

from driftloop.settings import Settings


def serve_monitor(
    model_name: str,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    alias: str = "champion",
) -> None:
    """Serve until asked to stop; windows are tested in a child process
    (:mod:`driftloop.monitor.detection_process`) and events taken by the monitor's own
    HTTP server (:mod:`driftloop.monitor.http_server`)."""
    from driftloop.monitor.http_server import MonitorServer
    from driftloop.monitor.service import MonitorService

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = MonitorService(model_name, settings, alias=alias, detection_process=True)
    MonitorServer(service, host or settings.monitor_host, port or settings.monitor_port).run(
        handle_signals=True
    )
