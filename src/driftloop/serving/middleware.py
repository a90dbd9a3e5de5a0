"""HTTP request metrics: every predictor request counted by model, endpoint and status.

The model label is the path's model name only when this process serves that model
(``metrics.model_label``); any other name is counted as ``"unknown"``.
"""

from __future__ import annotations

import re
import time

from driftloop.serving import metrics

_MODEL_PATHS = (
    (re.compile(r"^/v1/models/(?P<model>[^/:]+):predict$"), "v1_predict"),
    (re.compile(r"^/v1/models/(?P<model>[^/:]+):explain$"), "v1_explain"),
    (re.compile(r"^/v2/models/(?P<model>[^/]+)(/versions/[^/]+)?/infer$"), "v2_infer"),
    (re.compile(r"^/v2/models/(?P<model>[^/]+)/explain$"), "v2_explain"),
    (re.compile(r"^/v2/models/(?P<model>[^/]+)(/versions/[^/]+)?/ready$"), "v2_model_ready"),
    (re.compile(r"^/v2/models/(?P<model>[^/]+)$"), "v2_model_metadata"),
    (re.compile(r"^/v1/models/(?P<model>[^/:]+)$"), "v1_model_ready"),
)


def classify_path(path: str) -> tuple[str, str]:
    """(model, endpoint) labels for a request path; model is "" when none applies."""
    for pattern, endpoint in _MODEL_PATHS:
        match = pattern.match(path)
        if match:
            return match["model"], endpoint
    if path.startswith("/v1/feedback"):
        return "", "feedback"
    if path == "/metrics":
        return "", "metrics"
    if path.startswith("/v2/health") or path == "/":
        return "", "health"
    return "", "other"


class RequestMetricsMiddleware:
    def __init__(self, app) -> None:  # noqa: ANN001 - ASGI app
        self.app = app
        # (model, endpoint, status) -> its counter and latency series: labels() per request
        # is a locked lookup with argument checks; the label sets are few and bounded
        # (model names this process serves, fixed endpoints, HTTP status codes)
        self._series: dict[tuple[str, str, int], tuple] = {}

    def _series_for(self, model: str, endpoint: str, status: int) -> tuple:
        key = (model, endpoint, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                metrics.REQUESTS.labels(model=model, endpoint=endpoint, status=str(status)),
                metrics.REQUEST_LATENCY.labels(model=model, endpoint=endpoint),
            )
        return series

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        model, endpoint = classify_path(scope["path"])
        model = metrics.model_label(model)
        status = {"code": 500}
        started = time.perf_counter()

        async def capture(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            requests, latency = self._series_for(model, endpoint, status["code"])
            requests.inc()
            if endpoint != "metrics":
                latency.observe(time.perf_counter() - started)
