"""What ``driftloop status`` shows: processes, champion, recent decisions and runs.

The processes come from the supervisor (:meth:`Stack.status`); the champion
from the registry (the MLflow server, or its backend store directly when the
server is down); decisions and runs from the trigger's API, or from its ledger
when the trigger is not running. Nothing here creates a registry or a ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from driftloop.stack.supervisor import Stack


def champion_of(stack: Stack) -> dict[str, Any]:
    uri = stack.tracking_uri
    if stack.manages_mlflow and stack.running_pid("mlflow") is None:
        # read the server's backend store directly, if it exists (never create one here)
        database = stack.backend_uri.removeprefix("sqlite:///")
        if stack.backend_uri.startswith("sqlite:///") and not Path(database).is_file():
            return {"version": None, "error": "no registry yet"}
        uri = stack.backend_uri
    try:
        from driftloop.registry import ModelRegistry

        version = ModelRegistry(tracking_uri=uri).version_by_alias(stack.model, "champion")
    except Exception as exc:  # registry down or model unknown: status still prints
        return {"version": None, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    if version is None:
        return {"version": None}
    return {"version": str(version.version), "tags": dict(getattr(version, "tags", {}) or {})}


def trigger_view(stack: Stack, limit: int = 20) -> dict[str, Any]:
    if stack.running_pid("trigger") is None:
        return ledger_view(stack, limit)
    headers = {"Authorization": f"Bearer {stack.trigger_token()}"}
    base = stack.url("trigger")
    try:
        decisions = httpx.get(
            f"{base}/decisions", params={"limit": limit}, headers=headers, timeout=3
        )
        runs = httpx.get(f"{base}/runs", params={"limit": limit}, headers=headers, timeout=3)
        decisions.raise_for_status()
        runs.raise_for_status()
    except httpx.HTTPError as exc:
        return {"decisions": [], "runs": [], "trigger_error": f"trigger not reachable: {exc}"}
    return {"decisions": decisions.json()["decisions"], "runs": runs.json()["runs"]}


def ledger_view(stack: Stack, limit: int) -> dict[str, Any]:
    """What the stopped trigger recorded, read from its ledger (never created here)."""
    database = Path(stack.settings.home) / "trigger" / "trigger.db"
    if not database.is_file():
        return {"decisions": [], "runs": [], "trigger_error": "trigger is not running"}
    from driftloop.trigger.ledger import Ledger

    ledger = Ledger.at_home(stack.settings.home)
    try:
        return {
            "decisions": [d.to_json() for d in ledger.decisions(limit=limit)],
            "runs": [r.to_json() for r in ledger.runs(limit=limit)],
            "trigger_error": "trigger is not running (showing its ledger)",
        }
    finally:
        ledger.dispose()


def collect_status(stack: Stack) -> dict[str, Any]:
    """Everything ``driftloop status`` shows, with passwords and tokens masked."""
    from driftloop.security import mask_data, secret_values

    report = {
        "model": stack.model,
        "alerting": stack.alerting,
        "processes": [state.to_json() for state in stack.status()],
        "champion": champion_of(stack),
        **trigger_view(stack),
    }
    return mask_data(report, secret_values(stack.settings))
