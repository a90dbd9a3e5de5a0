"""AutoML studio jobs: a CSV uploaded, a tabular training run launched in the background.

A job is ``driftloop train tabular --data CSV ... --json`` in its own process
(the same pipeline, registry and gate as the command line), with its progress
lines in ``log.txt`` and its summary in ``summary.json`` under
``<home>/console/automl/<job>/``: the page reads both while it runs and after.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.security import private_dir

TASKS = ("auto", "classification", "regression", "clustering", "anomaly", "timeseries")
PRESETS = ("fast", "medium", "best")
SAMPLERS = ("tpe", "random", "grid")
VALIDATIONS = ("auto", "holdout", "kfold", "timeseries")
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DRIFTLOOP = [sys.executable, "-c", "import sys; from driftloop.cli import main; sys.exit(main())"]


class JobError(ValueError):
    """A launch request the studio refuses; the message names the field."""


@dataclass
class Job:
    id: str
    folder: Path
    model_name: str
    options: dict[str, str]
    started_at: float
    process: subprocess.Popen | None = None
    finished_at: float | None = None
    returncode: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if self.returncode is None:
            return "running"
        return "succeeded" if self.returncode == 0 else "failed"

    @property
    def seconds(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.folder / "log.txt").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def summary(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_name": self.model_name,
            "options": self.options,
            "state": self.state,
            "seconds": round(self.seconds, 1),
            "returncode": self.returncode,
        }


def candidate_scores(summary: dict[str, Any]) -> dict[str, float]:
    """candidate -> validation score of the primary metric, as the summary lists them."""
    from driftloop.training.candidate_plot import candidate_scores as scores_of

    return scores_of(summary, summary.get("primary_metric") or "")


def csv_columns(path: Path) -> list[str]:
    import pandas as pd

    return [str(c) for c in pd.read_csv(path, nrows=5).columns]


class Studio:
    """The jobs of one console process; each job's files outlive it."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.root = Path(home) / "console" / "automl"
        self.env = env
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def save_upload(self, filename: str, content: bytes) -> tuple[str, list[str]]:
        """Keep an uploaded CSV; returns its upload id and its columns."""
        if not content:
            raise JobError("file: the upload is empty")
        if len(content) > MAX_UPLOAD_BYTES:
            raise JobError(f"file: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB")
        upload_id = uuid.uuid4().hex[:12]
        folder = private_dir(self.root / "uploads")
        path = folder / f"{upload_id}.csv"
        path.write_bytes(content)
        try:
            columns = csv_columns(path)
        except Exception as exc:  # pandas raises several kinds for a file that is no CSV
            path.unlink(missing_ok=True)
            raise JobError(f"file: {filename!r} is not a readable CSV ({exc})") from None
        return upload_id, columns

    def upload_path(self, upload_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{12}", upload_id or ""):
            raise JobError("upload: unknown upload id")
        path = self.root / "uploads" / f"{upload_id}.csv"
        if not path.is_file():
            raise JobError("upload: unknown upload id")
        return path

    def launch(self, upload_id: str, form: dict[str, str]) -> Job:
        data = self.upload_path(upload_id)
        columns = csv_columns(data)
        target = form.get("target", "")
        if target not in columns:
            raise JobError(f"target: {target!r} is not a column of the CSV")
        model_name = form.get("model_name") or "automl"
        if not _NAME.match(model_name):
            raise JobError("model_name: letters, digits, '.', '_' or '-' (at most 64)")
        options = {"target": target}
        for name, allowed in (
            ("task", TASKS),
            ("preset", PRESETS),
            ("sampler", SAMPLERS),
            ("validation", VALIDATIONS),
        ):
            value = form.get(name) or allowed[0]
            if value not in allowed:
                raise JobError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
            options[name] = value
        argv = [
            *DRIFTLOOP,
            "train",
            "tabular",
            "--data",
            str(data),
            "--model-name",
            model_name,
            "--json",
        ]
        for name, value in options.items():
            argv += [f"--{name}", value]
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder = private_dir(self.root / job_id)
        (folder / "job.json").write_text(json.dumps({"model_name": model_name, **options}))
        job = Job(job_id, folder, model_name, options, time.time())
        with open(folder / "summary.json", "wb") as out, open(folder / "log.txt", "wb") as log:
            job.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=self.env or dict(os.environ),
                start_new_session=True,
            )
        with self._lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._wait, args=(job,), daemon=True).start()
        return job

    def _wait(self, job: Job) -> None:
        job.returncode = job.process.wait()
        job.finished_at = time.time()

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self.jobs.values(), key=lambda j: j.started_at, reverse=True)

    def stop_all(self) -> None:
        for job in self.jobs.values():
            if job.process is not None and job.process.poll() is None:
                job.process.terminate()
