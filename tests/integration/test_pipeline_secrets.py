"""No store password in any file a local retraining run leaves under DRIFTLOOP_HOME.

The run goes the whole local way: the trigger's LocalLauncher starts a worker
process, the worker runs a KFP pipeline through kfp.local, and the pipeline's
feedback step -- the real ``merge_feedback`` component, wired with the real
``configure`` as the retraining pipeline wires it, on a small table of training
rows -- reads labelled feedback from a real PostgreSQL store whose URL carries a
password. The step must find the store through its environment (the
trigger's settings handed down), so the URL is no argument anywhere: not in the
run spec, not in the task inputs kfp.local logs, not in any output.
"""

import json
import re
import time
from datetime import UTC, datetime

import pandas as pd
import pytest
from components import merge_feedback
from kfp import dsl
from pipelines._platform import configure

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

CANARY = "s3cr3t-canary"
MODEL = "sentiment"
FEEDBACK = 6


@dsl.pipeline(name="feedback-from-the-store")
def feedback_pipeline(rows_uri: str, model_name: str = MODEL, blueprint: str = "sentiment"):
    """The retraining pipeline's feedback step, configured as it configures it."""
    rows = dsl.importer(artifact_uri=rows_uri, artifact_class=dsl.Dataset, reimport=True)
    configure(
        merge_feedback(model_name=model_name, blueprint=blueprint, data=rows.output),
        needs_store=True,
    )


def _with_password(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).set(password=CANARY).render_as_string(hide_password=False)


def _add_feedback(store_url: str) -> None:
    from driftloop.store import PredictionRecord, PredictionStore

    store = PredictionStore(store_url)
    try:
        store.insert_predictions(
            PredictionRecord(
                request_id=f"req-{i}",
                model_name=MODEL,
                model_version="1",
                inputs=[f"produto chegou quebrado pedido {i}"],
                outputs=[{"label": "positive", "probabilities": {"positive": 0.6}}],
                label="positive",
                confidence=0.6,
            )
            for i in range(FEEDBACK)
        )
        for i in range(FEEDBACK):
            store.add_feedback(f"req-{i}", label="negative", correct=None)
    finally:
        store.close()


def test_a_local_retraining_run_writes_no_store_password_under_the_home(home, postgres_url):
    from driftloop.settings import Settings
    from driftloop.trigger.launchers import LocalLauncher, RetrainRequest
    from driftloop.trigger.ledger import RunRecord

    store_url = _with_password(postgres_url)  # trust auth: any password connects
    assert CANARY in store_url
    _add_feedback(store_url)
    rows = home.parent / "rows.parquet"
    pd.DataFrame(
        {
            "id": ["a", "b"],
            "text": ["adorei o produto", "chegou quebrado"],
            "label": ["positive", "negative"],
        }
    ).to_parquet(rows)
    settings = Settings(
        home=home,
        store_url=store_url,
        retrain_pipeline=f"{__name__}:feedback_pipeline",
    )
    # the store URL reaches the worker only through the launcher (the home fixture
    # removed DRIFTLOOP_STORE_URL from this process's environment)
    # the worker reads its settings from the environment, as under the trigger
    worker_env = {
        "PYTHONPATH": str(REPO_ROOT),
        "DRIFTLOOP_RETRAIN_ARGUMENTS": json.dumps({"rows_uri": str(rows)}),
    }
    launcher = LocalLauncher(settings, env=worker_env, cwd=REPO_ROOT)
    request = RetrainRequest(
        run_id="r-secret", model=MODEL, reason="DriftDetected", labels={"blueprint": "sentiment"}
    )
    launched = launcher.launch(request)
    record = RunRecord(
        run_id="r-secret",
        model=MODEL,
        reason="DriftDetected",
        launcher="local",
        state="running",
        started_at=datetime.now(UTC),
        pid=launched.pid,
    )
    deadline = time.monotonic() + 240
    while (status := launcher.poll(record)).state == "running":
        assert time.monotonic() < deadline, "the run did not finish in 240 s"
        time.sleep(0.5)
    launcher.close()
    worker_log = launcher.run_dir("r-secret") / "worker.log"
    assert status.state == "succeeded", (status.error, worker_log.read_text()[-3000:])
    # the feedback step read the password-protected store: its rows are in the output
    print("\ntask timings (s):", status.outputs["timings"])
    merged = json.loads(status.outputs["outputs"]["merge-feedback"]["Output"])
    assert merged["feedback_rows"] == FEEDBACK and merged["rows"] == 2 + FEEDBACK

    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.name == "run.log" for path in files)
    assert any(path.name == "executor_output.json" for path in files)
    leaking = [str(path) for path in files if CANARY.encode() in path.read_bytes()]
    assert leaking == []
    # not even masked: the URL is no task input, so kfp.local never prints it
    run_log = next(path for path in files if path.name == "run.log").read_text()
    run_log = re.sub(r"\x1b\[[0-9;]*m", "", run_log)
    assert "Executing task 'merge-feedback'" in run_log
    assert "store_url" not in run_log and postgres_url.rsplit("/", 1)[1] not in run_log
