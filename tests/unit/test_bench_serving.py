"""The serving bench's plan and verdicts (issue 19's ratios) on made-up load results."""

from __future__ import annotations

import json
from pathlib import Path

from bench import mlserver, serving
from bench.context import Budget, Context
from bench.fixtures import ModelFixture
from bench.loadgen import LoadResult
from bench.results import Results
from rich.console import Console
from rich.progress import Progress


def result(rps: float, p99_ms: float, concurrency: int) -> LoadResult:
    return LoadResult("wrk", concurrency, int(rps), 0, 1.0, rps, p99_ms / 2, p99_ms, p99_ms, 0, 0)


def text_model() -> ModelFixture:
    return ModelFixture("sentiment", "text", "sklearn", "models:/s", Path("."), None, [], "")


def context(tmp_path: Path, quick: bool) -> Context:
    return Context(
        out=tmp_path,
        results=Results(quick=quick, machine={"cores": 2, "cpu_model": "x"}, date="d"),
        budget=Budget(quick=quick),
        console=Console(file=open(tmp_path / "console.txt", "w")),  # noqa: SIM115
        progress=Progress(),
        work=tmp_path,
        section="serving",
    )


def test_plan_measures_8_and_32_connections_and_batching_off_in_full_runs():
    plan = serving.server_plan(text_model(), None, quick=False, concurrencies=(1, 8, 32))
    kinds = {kind: conc for kind, _, conc in plan}
    assert kinds[serving.UNBATCHED] == (8, 32)
    assert {serving.ON, serving.OFF, serving.KSERVE, serving.MLSERVER} <= set(kinds)
    quick = serving.server_plan(text_model(), "no venv", quick=True, concurrencies=(8, 32))
    assert serving.MLSERVER not in {kind for kind, _, _ in quick}
    assert serving.DRIFTLOOP_ENV[serving.UNBATCHED] == {"DRIFTLOOP_MAX_BATCH_SIZE": "1"}


def test_acceptance_states_each_ratio_against_its_limit(tmp_path):
    ctx = context(tmp_path, quick=False)
    model = text_model()
    name = model.name
    table = {
        (name, serving.ON, "rest-v2", 32): result(800, 60, 32),
        (name, serving.KSERVE, "rest-v2", 32): result(160, 250, 32),
        (name, serving.MLSERVER, "rest-v2", 32): result(600, 80, 32),
        (name, serving.ON, "rest-v2", 8): result(500, 30, 8),
        (name, serving.KSERVE, "rest-v2", 8): result(150, 60, 8),
        (name, serving.OFF, "rest-v2", 8): result(510, 29, 8),
    }
    paired = {"rest-v2": {serving.ON: result(490, 30, 8), serving.OFF: result(500, 29, 8)}}
    paired["rest-v2"]["rounds"] = {serving.ON: [490.0], serving.OFF: [500.0]}
    serving.acceptance(ctx, model, table, paired)
    notes = " | ".join(ctx.results.notes["serving"])
    assert "kserve baseline = 5.00x (800 vs 160 req/s) -> PASS (limit 4.0x)" in notes
    assert "(adaptive batching) = 1.33x (800 vs 600 req/s) -> FAIL (limit 1.5x)" in notes
    assert "p99 driftloop 30.0 ms / bare 60.0 ms = 0.50 -> PASS" in notes
    assert "on / off = 0.980 -> PASS (limit 0.95" in notes
    headline = {f.name: f.ratio for f in ctx.results.figures if f.headline}
    assert headline["driftloop (on) vs bare kserve.Model throughput"] == 5.0
    assert headline["p99 latency vs bare kserve.Model"] == 0.5


def test_mlserver_repository_turns_adaptive_batching_on(tmp_path):
    root = mlserver.write_repository(
        tmp_path,
        "sentiment",
        tmp_path / "model",
        http_port=1,
        grpc_port=2,
        max_batch_size=32,
        max_batch_time_ms=5,
        implementation=mlserver.TEXT_RUNTIME,
    )
    settings = json.loads((root / "sentiment" / "model-settings.json").read_text())
    assert settings["max_batch_size"] == 32 and settings["max_batch_time"] == 0.005
    assert settings["implementation"] == "bench.mlserver_runtime.TextClassifierRuntime"
    module, _, cls = mlserver.TEXT_RUNTIME.rpartition(".")
    assert (Path(mlserver.REPO_ROOT) / (module.replace(".", "/") + ".py")).is_file()
    assert f"class {cls}(" in (mlserver.REPO_ROOT / "bench" / "mlserver_runtime.py").read_text()
    # MLServer's workers import the runtime from the repository root
    env = mlserver.environment({"PATH": "/bin"})
    assert str(mlserver.REPO_ROOT) in env["PYTHONPATH"].split(":")


def test_verdicts_use_the_interleaved_rounds_over_the_sequential_table(tmp_path):
    ctx = context(tmp_path, quick=True)
    model = text_model()
    table = {
        (model.name, serving.ON, "rest-v2", 32): result(100, 60, 32),
        (model.name, serving.KSERVE, "rest-v2", 32): result(100, 60, 32),
    }
    interleaved = {
        (serving.ON, 32): result(450, 60, 32),
        (serving.KSERVE, 32): result(100, 400, 32),
        (serving.ON, 8): result(300, 40, 8),
        (serving.KSERVE, 8): result(90, 100, 8),
    }
    rounds = {"driftloop (logging+store on) c=32": [440.0, 450.0, 460.0]}
    paired = {"interleaved": {"results": interleaved, "rounds": rounds}}
    serving.acceptance(ctx, model, table, paired)
    notes = " | ".join(ctx.results.notes["serving"])
    assert "kserve baseline = 4.50x (450 vs 100 req/s) -> PASS (quick run" in notes
    assert "p99 driftloop 40.0 ms / bare 100.0 ms = 0.40 -> PASS" in notes
    figure = next(f for f in ctx.results.figures if f.name.endswith("bare kserve.Model throughput"))
    assert figure.params["rounds_rps"] == rounds and "interleaved" in figure.params["method"]


def test_server_cpu_per_request_is_the_tree_cpu_over_the_answers(monkeypatch):
    monkeypatch.setattr(serving.os, "cpu_count", lambda: 2)
    busy = result(400.0, 50.0, 32)
    busy.server_cpu_share = 0.25  # half a core of two, for 400 answers a second
    assert abs(serving.server_cpu_ms_per_request(busy) - 1.25) < 1e-9
    assert serving.server_cpu_ms_per_request(result(400.0, 50.0, 32)) is None
