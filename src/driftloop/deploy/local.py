"""Rollout on the embedded stack.

The local predictor follows the registry by itself (it reloads
``models:/NAME@champion`` every ``reload_interval_s``), so a rollout here
changes nothing: it waits, bounded, until the predictor's v2 model metadata
(``GET /v2/models/NAME``) lists the version in ``versions``. Without a local
predictor there is nothing to wait for, and that is not an error.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx

from driftloop.deploy.base import (
    NO_LOCAL_PREDICTOR,
    READY,
    TIMEOUT,
    Deployer,
    RolloutResult,
    registry_model_uri,
)

if TYPE_CHECKING:
    from driftloop.settings import Settings

DEFAULT_PREDICTOR_URL = "http://127.0.0.1:8080"


class LocalDeployer(Deployer):
    target = "local"

    def __init__(
        self,
        predictor_url: str = DEFAULT_PREDICTOR_URL,
        *,
        api_token: str | None = None,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.predictor_url = predictor_url.rstrip("/")
        self.api_token = api_token
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s

    @classmethod
    def from_settings(cls, settings: Settings, **options) -> LocalDeployer:
        # An explicit ``predictor_url`` setting wins; otherwise the local
        # stack's predictor on 127.0.0.1:predictor_port (8080 by default).
        port = getattr(settings, "predictor_port", 8080)
        options.setdefault(
            "predictor_url",
            getattr(settings, "predictor_url", None) or f"http://127.0.0.1:{port}",
        )
        options.setdefault("api_token", settings.api_token)
        return cls(**options)

    def roll_out(
        self, model_name: str, version: str, model_uri: str | None = None
    ) -> RolloutResult:
        uri = model_uri or registry_model_uri(model_name, version)
        started = time.monotonic()
        deadline = started + self.timeout_s
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        metadata_url = f"{self.predictor_url}/v2/models/{model_name}"
        ever_reached = False
        last_seen: list[str] = []

        def result(status: str, message: str) -> RolloutResult:
            return RolloutResult(
                model_name=model_name,
                version=str(version),
                model_uri=uri,
                target=self.target,
                status=status,
                ready=status == READY,
                elapsed_s=round(time.monotonic() - started, 3),
                message=message,
                url=metadata_url if ever_reached else None,
            )

        with httpx.Client(timeout=min(5.0, max(self.timeout_s, 0.1)), headers=headers) as client:
            while True:
                try:
                    response = client.get(metadata_url)
                    ever_reached = True
                    if response.status_code == 200:
                        last_seen = [str(v) for v in response.json().get("versions") or []]
                        if str(version) in last_seen:
                            return result(
                                READY, f"{self.predictor_url} serves {model_name} {version}"
                            )
                except httpx.TransportError:
                    # A predictor that was never there is "nothing to roll out
                    # to"; one that was seen and vanished is restarting: keep waiting.
                    if not ever_reached:
                        return result(
                            NO_LOCAL_PREDICTOR,
                            f"nothing listens at {self.predictor_url}; "
                            f"a predictor started later loads the champion itself",
                        )
                except ValueError:
                    pass  # a non-JSON body mid-restart; poll again
                if time.monotonic() >= deadline:
                    seen = ", ".join(last_seen) or "none"
                    return result(
                        TIMEOUT,
                        f"{self.predictor_url} did not report {model_name} version {version} "
                        f"within {self.timeout_s:g}s (versions seen: {seen})",
                    )
                time.sleep(self.poll_interval_s)
