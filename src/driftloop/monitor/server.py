"""Run the monitor (or the built-in evaluator) under uvicorn / in the foreground."""

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
    import uvicorn

    from driftloop.monitor.app import create_app
    from driftloop.monitor.service import MonitorService

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = MonitorService(model_name, settings, alias=alias)
    uvicorn.run(
        create_app(service),
        host=host or settings.monitor_host,
        port=port or settings.monitor_port,
        log_level="warning",
        access_log=False,
    )
