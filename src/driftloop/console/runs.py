"""Retraining decisions and runs (the trigger's API, else its ledger) and local pipeline runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from driftloop.console.config import ConsoleConfig

# <pipeline>-<YYYYmmdd-HHMMSS>-<hex>: the folder pipelines.local_run gives each run
_RUN_FOLDER = re.compile(r"^(?P<pipeline>.+)-(?P<stamp>\d{8}-\d{6})-(?P<id>[0-9a-f]{6})$")


def trigger_records(config: ConsoleConfig, limit: int = 50) -> dict[str, Any]:
    """``{"decisions", "runs", "source", "error"}`` from the trigger, or the ledger it keeps."""
    headers = {"Authorization": f"Bearer {config.trigger_token}"} if config.trigger_token else {}
    base = config.trigger_url.rstrip("/")
    try:
        decisions = httpx.get(
            f"{base}/decisions", params={"limit": limit}, headers=headers, timeout=3
        )
        runs = httpx.get(f"{base}/runs", params={"limit": limit}, headers=headers, timeout=3)
        decisions.raise_for_status()
        runs.raise_for_status()
        return {
            "decisions": decisions.json()["decisions"],
            "runs": runs.json()["runs"],
            "source": f"trigger at {base}",
            "error": None,
        }
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        problem = f"trigger at {base} not reachable ({type(exc).__name__})"
    database = config.home / "trigger" / "trigger.db"
    if not database.is_file():
        return {"decisions": [], "runs": [], "source": None, "error": problem}
    from driftloop.trigger.ledger import Ledger

    ledger = Ledger.at_home(config.home)
    try:
        return {
            "decisions": [d.to_json() for d in ledger.decisions(limit=limit)],
            "runs": [r.to_json() for r in ledger.runs(limit=limit)],
            "source": f"ledger {database}",
            "error": problem + "; showing its ledger",
        }
    finally:
        ledger.dispose()


def for_model(records: dict[str, Any], model: str) -> dict[str, Any]:
    return {
        **records,
        "decisions": [d for d in records["decisions"] if d.get("model") == model],
        "runs": [r for r in records["runs"] if r.get("model") == model],
    }


def run_events(records: dict[str, Any]) -> list[dict[str, Any]]:
    """Alerts the trigger received and the runs it launched, as plot marks."""
    events = [
        {"at": d["at"], "kind": "alert", "text": d.get("alertname") or d["outcome"]}
        for d in records["decisions"]
        if d.get("outcome") == "launched"
    ]
    events += [{"at": r["started_at"], "kind": "run", "text": r["run_id"]} for r in records["runs"]]
    return events


def local_pipeline_runs(pipeline_root: Path, limit: int = 50) -> list[dict[str, Any]]:
    """kfp.local runs on this machine, newest first: pipeline, start, tasks, log."""
    if not pipeline_root.is_dir():
        return []
    runs = []
    for folder in pipeline_root.iterdir():
        match = _RUN_FOLDER.match(folder.name)
        if not match or not folder.is_dir():
            continue
        started = datetime.strptime(match["stamp"], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
        task_dirs = [
            p
            for run in folder.iterdir()
            if run.is_dir() and not run.name.startswith(".")
            for p in run.iterdir()
            if p.is_dir()
        ]
        runs.append(
            {
                "pipeline": match["pipeline"],
                "run_id": f"{match['stamp']}-{match['id']}",
                "started_at": started.isoformat(),
                "tasks": len(task_dirs),
                "log": str(folder / "run.log"),
            }
        )
    runs.sort(key=lambda run: run["started_at"], reverse=True)
    return runs[:limit]
