"""Blueprints: every use case served by driftloop's predictor beside a bare ``kserve.Model``.

For each blueprint (sentiment, tabular, vision, forecast, recsys) a small model is trained
with the blueprint's own code -- its ``prepare``/``load``, its ``split_scheme`` and the
shared ``train_candidates``, seeded and CPU-sized -- and registered with the lineage tags
the pipeline writes, so the predictor resolves the blueprint from the version as it does
in production. Then, REST v2 with one realistic instance per request (the form the
blueprint's clients send: a review text; one tensor per column of a penguin; a base64 PNG
of a Fashion-MNIST photo; the last 60 closes of MSFT with series and date; a warm user
with a 3-item session and k), all driven by ``wrk``:

- driftloop's predictor as shipped: adaptive batching at its default limits, payload
  logging to a local CloudEvents sink and the prediction store (SQLite) on;
- the bare server (``bench.blueprint_baseline``): the same fitted model loaded from the
  same MLflow folder, its ``predict_proba``/``predict``/``recommend`` called per request,
  no batching, nothing else;

at 8 and 32 connections (full: three rounds in alternating order, medians; quick: one),
req/s, p50 and p99 and their ratios to the bare server. Then the bare server stops and
the predictor gets 100,000 more requests (quick: 10,000) at 32 connections, in chunks,
its resident memory (process tree) sampled at start (ready, before any request), after
warm-up (the throughput rounds plus a tenth of the count) and after each chunk.
Acceptance (issue 19): RSS at the end grows < 5 % over the after-warm-up sample.

Every server process runs with ``OMP_NUM_THREADS=1`` (``bench.procs.server_env``); the
CNN and the LSTM run on one torch thread in the predictor as in production.
"""

from __future__ import annotations

import base64
import json
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.context import Context, SectionSkipped
from bench.loadgen import LoadResult, run_wrk, wrk_available
from bench.procs import Server, driftloop_predictor, free_ports, running, server_env

RSS_GROWTH_LIMIT = 0.05  # issue 19: predictor RSS grows < 5 % over 100k requests
LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS = 8, 32
DRIFTLOOP, BARE = "driftloop (batching, logging+store on)", "bare kserve.Model"
WARM_UP_SHARE = 0.1  # of the request count, sent before the after-warm-up RSS sample
RSS_CHUNKS = 10  # RSS is sampled after each of this many chunks of the count
SEED = 42
ORDER = ("sentiment", "tabular", "vision", "forecast", "recsys")


# --- request bodies (REST v2, one instance each) ----------------------------------------


def _v2(*inputs: dict) -> bytes:
    return json.dumps({"inputs": list(inputs)}).encode()


def text_body(text: str) -> bytes:
    """One review: ``text`` BYTES [1]."""
    return _v2({"name": "text", "datatype": "BYTES", "shape": [1], "data": [str(text)]})


def table_body(row: dict[str, Any]) -> bytes:
    """One table row as one tensor per column (FP32 numbers, BYTES text, null: missing)."""
    inputs = []
    for column, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        inputs.append(
            {
                "name": str(column),
                "datatype": "FP32" if numeric or value is None else "BYTES",
                "shape": [1],
                "data": [float(value) if numeric else value],
            }
        )
    return _v2(*inputs)


def image_body(png: bytes) -> bytes:
    """One encoded photo: ``image`` BYTES [1] holding its base64 text (the declared form)."""
    encoded = base64.b64encode(png).decode("ascii")
    return _v2({"name": "image", "datatype": "BYTES", "shape": [1], "data": [encoded]})


def window_body(prices: list[float], series: str, date: str) -> bytes:
    """One window: ``last_prices`` FP32 [1, w], and the series and target date it forecasts
    (what lets the realised close come back as feedback)."""
    prices = [float(p) for p in prices]
    return _v2(
        {"name": "last_prices", "datatype": "FP32", "shape": [1, len(prices)], "data": prices},
        {"name": "series", "datatype": "BYTES", "shape": [1], "data": [series]},
        {"name": "date", "datatype": "BYTES", "shape": [1], "data": [date]},
    )


def recsys_body(user: str, recent: list[str], k: int) -> bytes:
    """One user, the items of their current session, and how many recommendations."""
    recent = [str(item) for item in recent]
    inputs = [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": [str(user)]}]
    if recent:
        inputs.append(
            {"name": "recent_items", "datatype": "BYTES", "shape": [1, len(recent)], "data": recent}
        )
    inputs.append({"name": "k", "datatype": "INT32", "shape": [1], "data": [int(k)]})
    return _v2(*inputs)


def disagreements(ours: dict, bare: dict, rtol: float = 1e-4) -> list[str]:
    """The outputs of the bare server's v2 answer that driftloop's answer lacks or answers
    differently (numbers to ``rtol``: one side may compute in float32): both servers must
    hold the same model, or their figures compare nothing."""
    mine = {output["name"]: output["data"] for output in ours.get("outputs", [])}
    problems = []
    for output in bare.get("outputs", []):
        name, theirs = output["name"], output["data"]
        if name not in mine:
            problems.append(f"{name}: missing from driftloop's answer")
        elif len(mine[name]) != len(theirs):
            problems.append(f"{name}: {len(mine[name])} vs {len(theirs)} values")
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in theirs):
            if not np.allclose(mine[name], theirs, rtol=rtol, atol=1e-6):
                problems.append(f"{name}: {mine[name][:3]} vs {theirs[:3]}")
        elif list(mine[name]) != list(theirs):
            problems.append(f"{name}: {mine[name][:3]} vs {theirs[:3]}")
    return problems


# --- memory -------------------------------------------------------------------------------


def rss_growth(baseline_mib: float, end_mib: float) -> float:
    """(end - baseline) / baseline: the fraction RSS grew (negative: it shrank)."""
    if baseline_mib <= 0:
        raise ValueError(f"baseline RSS must be positive, got {baseline_mib}")
    return (end_mib - baseline_mib) / baseline_mib


def rss_verdict(growth: float, limit: float = RSS_GROWTH_LIMIT) -> str:
    return "PASS" if growth < limit else "FAIL"


def chunk_seconds(requests: int, rps: float) -> int:
    """Whole seconds of ``wrk`` (its ``-d``) to answer about ``requests`` at ``rps``."""
    if requests <= 0:
        return 0
    if rps <= 0:
        raise ValueError(f"throughput must be positive to plan a chunk, got {rps}")
    return max(1, round(requests / rps))


@dataclass
class MemoryRun:
    """The predictor's RSS (MiB, process tree) around a drive of ``requests`` answers."""

    start_mib: float  # ready, before any request
    warm_mib: float  # after the throughput rounds and the warm-up share
    end_mib: float  # after the count
    warm_up_requests: int
    requests: int  # answered after the warm-up sample (wrk's count)
    errors: int
    seconds: float
    samples: list[tuple[int, float]] = field(default_factory=list)  # (answered, MiB)

    @property
    def growth(self) -> float:
        return rss_growth(self.warm_mib, self.end_mib)

    @property
    def peak_mib(self) -> float:
        return max([self.warm_mib, self.end_mib, *(mib for _, mib in self.samples)])


# --- models -------------------------------------------------------------------------------


@dataclass
class BlueprintModel:
    blueprint: str
    name: str  # registered model name; alias champion
    local_dir: Path  # the registered MLflow model folder (what the bare server loads)
    body: bytes
    trained_by: str
    train_seconds: float


def _train_and_register(
    name: str,
    spec: Any,
    dataset: str | None,
    candidates: list[str],
    frame_filter: Callable | None = None,
) -> tuple[Any, Any, Any, Path, str]:
    """The pipeline's path without kfp: the blueprint prepares, loads and splits the data
    (its ``split_scheme``), ``train_candidates`` fits ``candidates``, the winner is
    registered with the lineage tags (blueprint spec and flavour included) and aliased
    champion. Returns (blueprint, splits, train result, model folder, version)."""
    import mlflow

    from driftloop.blueprints import get_blueprint
    from driftloop.datasets.fingerprint import frame_fingerprint
    from driftloop.lineage import version_tags
    from driftloop.registry import ModelRegistry
    from driftloop.training.candidates import train_candidates
    from driftloop.training.splits import split_with_scheme

    blueprint, dataset, _ = get_blueprint(spec).prepare(dataset, None)
    frame = blueprint.load(dataset, None)
    if frame_filter is not None:
        frame = frame_filter(frame)
    splits = split_with_scheme(
        frame,
        blueprint.split_scheme(SEED),
        label_column=blueprint.class_column,
        id_column=blueprint.id_column,
    )
    result = train_candidates(
        blueprint,
        splits.train,
        splits.val,
        seed=SEED,
        experiment="bench-blueprints",
        candidates=candidates,
        fingerprints=dict(splits.fingerprints),
    )
    primary = blueprint.primary_metric
    tags = version_tags(
        dataset_fingerprint=frame_fingerprint(frame),
        split_fingerprints={k: splits.fingerprints[k] for k in ("train", "val", "test")},
        metric_name=primary,
        metric_value=result.val_metrics[primary],
        metric_split="val",
        blueprint=blueprint.spec,
        flavour=blueprint.flavour,
    )
    registry = ModelRegistry()
    version = registry.register(name, result.run_id, tags=tags)
    registry.set_alias(name, "champion", version)
    local_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}"))
    return blueprint, splits, result, local_dir, str(version)


def _described(result: Any, blueprint: Any, splits: Any, version: str) -> str:
    primary = blueprint.primary_metric
    return (
        f"{blueprint.spec.to_text()}: {len(splits.train)} train rows, candidate "
        f"{result.best_candidate}, val {primary} {result.val_metrics[primary]:.4f}, "
        f"version {version}"
    )


def build_sentiment(ctx: Context) -> BlueprintModel:
    from bench.models import sentiment_model

    model = sentiment_model(ctx)  # the serving section's champion, shared when both run
    by_length = sorted(model.samples, key=len)
    return BlueprintModel(
        "sentiment",
        model.name,
        model.local_dir,
        text_body(by_length[len(by_length) // 2]),  # a review of median length
        model.trained_by,
        model.train_seconds,
    )


def build_tabular(ctx: Context) -> BlueprintModel:
    from driftloop.blueprints import BlueprintSpec

    started = time.perf_counter()
    blueprint, splits, result, local_dir, version = _train_and_register(
        "bp-penguins",
        BlueprintSpec("tabular", {"target": "species"}),
        "penguins",
        ["logistic_regression", "lightgbm"],
    )
    seconds = time.perf_counter() - started
    features = blueprint.features(splits.test)
    row = features[features.notna().all(axis=1)].iloc[0].to_dict()
    return BlueprintModel(
        "tabular",
        "bp-penguins",
        local_dir,
        table_body(row),
        _described(result, blueprint, splits, version),
        seconds,
    )


def build_vision(ctx: Context) -> BlueprintModel:
    from driftloop.blueprints import BlueprintSpec
    from driftloop.datasets.images import png_bytes

    rows = 3000 if ctx.budget.quick else 6000
    started = time.perf_counter()
    blueprint, splits, result, local_dir, version = _train_and_register(
        "bp-fashion",
        BlueprintSpec("vision", {"max_rows": rows, "epochs": 2, "max_seconds": 90, "width": 8}),
        None,
        ["cnn"],
    )
    seconds = time.perf_counter() - started
    pixels = blueprint.features(splits.test.head(1))[0]
    return BlueprintModel(
        "vision",
        "bp-fashion",
        local_dir,
        image_body(png_bytes(pixels)),
        _described(result, blueprint, splits, version)
        + " (the small CNN is served, not the logistic-regression baseline)",
        seconds,
    )


def build_forecast(ctx: Context) -> BlueprintModel:
    from driftloop.blueprints import BlueprintSpec
    from driftloop.blueprints.forecast.windows import price_columns

    started = time.perf_counter()
    blueprint, splits, result, local_dir, version = _train_and_register(
        "bp-msft",
        BlueprintSpec("forecast", {"epochs": 5, "max_days": 1500, "max_seconds": 60}),
        "msft",
        ["lstm"],
    )
    seconds = time.perf_counter() - started
    first = splits.test.iloc[0]
    return BlueprintModel(
        "forecast",
        "bp-msft",
        local_dir,
        window_body(
            first[price_columns(blueprint.window)].tolist(), "msft", str(first["date"])[:10]
        ),
        _described(result, blueprint, splits, version)
        + " (the LSTM is served whatever its MASE: this section measures serving, not accuracy)",
        seconds,
    )


def build_recsys(ctx: Context) -> BlueprintModel:
    from driftloop.blueprints import BlueprintSpec

    items = 500 if ctx.budget.quick else 1000
    started = time.perf_counter()
    blueprint, splits, result, local_dir, version = _train_and_register(
        "bp-movies",
        BlueprintSpec("recsys", {"max_items": items}),
        None,
        ["driftloop"],
    )
    seconds = time.perf_counter() - started
    # a warm user of median history who came back: their first later items are the session
    counts = splits.train["user"].astype(str).value_counts()
    later = splits.val.assign(user=splits.val["user"].astype(str))
    returning = [u for u in counts.index if u in set(later["user"])]
    user = returning[len(returning) // 2]
    session = later[later["user"] == user].sort_values("timestamp")["item"].astype(str)
    return BlueprintModel(
        "recsys",
        "bp-movies",
        local_dir,
        recsys_body(user, session.head(3).tolist(), blueprint.k),
        _described(result, blueprint, splits, version),
        seconds,
    )


BUILDERS: dict[str, Callable[[Context], BlueprintModel]] = {
    "sentiment": build_sentiment,
    "tabular": build_tabular,
    "vision": build_vision,
    "forecast": build_forecast,
    "recsys": build_recsys,
}


# --- servers and load -----------------------------------------------------------------------


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


@contextmanager
def bare_server(ctx: Context, model: BlueprintModel):
    http_port, grpc_port = free_ports(2)
    command = [
        sys.executable, "-m", "bench.blueprint_baseline",
        "--model_uri", str(model.local_dir), "--blueprint", model.blueprint,
        "--model_name", model.name, "--http_port", str(http_port),
        "--grpc_port", str(grpc_port), "--enable_latency_logging", "false",
    ]  # fmt: skip
    with running(
        BARE,
        command,
        ready_url=f"http://127.0.0.1:{http_port}/v2/models/{model.name}/ready",
        log=ctx.logs_dir() / f"{model.blueprint}-bare.log",
        env=server_env(),
        http_port=http_port,
        grpc_port=grpc_port,
    ) as server:
        yield server


def infer_url(server: Server, model: BlueprintModel) -> str:
    return f"{server.base_url}/v2/models/{model.name}/infer"


def check_answers(server: Server, model: BlueprintModel, requests: int = 20) -> dict:
    """A few sequential requests (first-call costs stay out of the figures); each must be a
    200. Returns the last answer, for the log."""
    with httpx.Client(timeout=60) as client:
        for _ in range(requests):
            response = client.post(
                infer_url(server, model),
                content=model.body,
                headers={"content-type": "application/json"},
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"{server.name} ({model.blueprint}) answered {response.status_code}: "
                    f"{response.text[:300]}"
                )
    return response.json()


def wrk_point(server: Server, model: BlueprintModel, concurrency: int, seconds: float):
    result = run_wrk(
        infer_url(server, model),
        model.body,
        concurrency=concurrency,
        seconds=seconds,
        server_pid=server.pid,
    )
    if result.errors:
        raise RuntimeError(
            f"{server.name} ({model.blueprint}): {result.errors} errors in "
            f"{result.requests} requests at {concurrency} connections"
        )
    return result


def median_point(results: list[LoadResult]) -> LoadResult:
    """The median-throughput round, with the median p50 and p99 of the rounds."""
    import dataclasses

    ranked = sorted(results, key=lambda r: r.rps)
    middle = ranked[(len(ranked) - 1) // 2]
    return dataclasses.replace(
        middle,
        p50_ms=float(statistics.median(r.p50_ms for r in results)),
        p99_ms=float(statistics.median(r.p99_ms for r in results)),
    )


def interleaved_points(
    ctx: Context, model: BlueprintModel, servers: dict[str, Server], rounds: int, task
) -> dict[tuple[str, int], LoadResult]:
    points = [
        (kind, concurrency)
        for concurrency in (LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS)
        for kind in (DRIFTLOOP, BARE)
    ]
    runs: dict[tuple[str, int], list[LoadResult]] = {}
    for index in range(rounds):
        for kind, concurrency in points if index % 2 == 0 else points[::-1]:
            ctx.progress.update(
                task, description=f"blueprints: {model.blueprint} round {index + 1}/{rounds}"
            )
            runs.setdefault((kind, concurrency), []).append(
                wrk_point(servers[kind], model, concurrency, ctx.budget.load_seconds)
            )
    return {point: median_point(results) for point, results in runs.items()}


def settle_rss(pid: int, seconds: float = 1.0) -> float:
    """The RSS once the predictor is idle (its logger and store writer drained a moment)."""
    from bench.soak import tree_rss_mib

    time.sleep(seconds)
    return tree_rss_mib(pid)


def drive(
    server: Server, model: BlueprintModel, requests: int, rps: float
) -> tuple[int, int, float, float]:
    """About ``requests`` answers at 32 connections in one wrk run; (answered, errors,
    seconds, measured req/s)."""
    result = run_wrk(
        infer_url(server, model),
        model.body,
        concurrency=THROUGHPUT_CONNECTIONS,
        seconds=chunk_seconds(requests, rps),
        server_pid=server.pid,
    )
    answered = result.requests - result.errors
    return answered, result.errors, result.seconds, result.rps


def memory_count(quick: bool) -> int:
    """How many requests the memory run sends after its warm-up (issue 19: 100k)."""
    return 10_000 if quick else 100_000


def memory_run(
    ctx: Context, model: BlueprintModel, predictor: Server, start_mib: float, rps: float, task
) -> MemoryRun:
    """The predictor's RSS after warm-up and after ``count`` more answers (chunked wrk runs)."""
    count = memory_count(ctx.budget.quick)
    warm_up = int(count * WARM_UP_SHARE)
    ctx.progress.update(task, description=f"blueprints: {model.blueprint} warm-up {warm_up}")
    warm_answered, errors, _, measured = drive(predictor, model, warm_up, rps)
    rps = measured or rps
    warm_mib = settle_rss(predictor.pid)
    answered, seconds, samples = 0, 0.0, []
    per_chunk = math.ceil(count / RSS_CHUNKS)
    while answered < count:
        ctx.progress.update(
            task, description=f"blueprints: {model.blueprint} {answered:,}/{count:,} requests"
        )
        done, failed, took, measured = drive(
            predictor, model, min(per_chunk, count - answered), rps
        )
        if done <= 0:
            raise RuntimeError(f"{model.blueprint}: a chunk got no answer ({failed} errors)")
        answered, errors, seconds = answered + done, errors + failed, seconds + took
        rps = measured or rps
        samples.append((answered, settle_rss(predictor.pid, 0.2)))
    return MemoryRun(
        start_mib=start_mib,
        warm_mib=warm_mib,
        end_mib=settle_rss(predictor.pid),
        warm_up_requests=warm_answered,
        requests=answered,
        errors=errors,
        seconds=seconds,
        samples=samples,
    )


def load_average() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


# --- the section --------------------------------------------------------------------------


def measure_blueprint(ctx: Context, model: BlueprintModel, task) -> None:
    from bench.serving import cloudevents_sink
    from bench.soak import tree_rss_mib

    rounds = 1 if ctx.budget.quick else 3
    loads = [load_average()]
    with ExitStack() as stack:
        sink = stack.enter_context(cloudevents_sink(ctx))
        predictor = stack.enter_context(
            driftloop_predictor(
                DRIFTLOOP,
                model.name,
                log=ctx.logs_dir() / f"{model.blueprint}-{_slug(DRIFTLOOP)}.log",
                env={"DRIFTLOOP_LOGGER_URL": f"{sink.base_url}/"},
            )
        )
        start_mib = tree_rss_mib(predictor.pid)
        with bare_server(ctx, model) as bare:
            servers = {DRIFTLOOP: predictor, BARE: bare}
            answers = {kind: check_answers(server, model) for kind, server in servers.items()}
            (ctx.logs_dir() / f"{model.blueprint}-answers.json").write_text(
                json.dumps({"body": json.loads(model.body), "answers": answers}, indent=1)
            )
            differ = disagreements(answers[DRIFTLOOP], answers[BARE])
            if differ:
                raise RuntimeError(
                    f"{model.blueprint}: driftloop and the bare server answer differently: "
                    + "; ".join(differ)
                )
            points = interleaved_points(ctx, model, servers, rounds, task)
        loads.append(load_average())
        memory = memory_run(
            ctx, model, predictor, start_mib, points[(DRIFTLOOP, THROUGHPUT_CONNECTIONS)].rps, task
        )
        loads.append(load_average())
    report(ctx, model, points, memory, rounds, loads)


def report(
    ctx: Context,
    model: BlueprintModel,
    points: dict[tuple[str, int], LoadResult],
    memory: MemoryRun,
    rounds: int,
    loads: list[str],
) -> None:
    where = {
        "blueprint": model.blueprint,
        "model": model.name,
        "protocol": "rest-v2",
        "generator": "wrk",
        "rounds": rounds,
        "seconds_per_point": ctx.budget.load_seconds,
    }
    for concurrency in (LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS):
        ours, bare = points[(DRIFTLOOP, concurrency)], points[(BARE, concurrency)]
        ctx.add(
            "throughput vs bare kserve.Model",
            ours.rps,
            "req/s",
            baseline=BARE,
            baseline_value=bare.rps,
            better="higher",
            headline=concurrency == THROUGHPUT_CONNECTIONS,
            concurrency=concurrency,
            **where,
        )
        for percentile in ("p50", "p99"):
            ctx.add(
                f"{percentile} latency vs bare kserve.Model",
                getattr(ours, f"{percentile}_ms"),
                "ms",
                baseline=BARE,
                baseline_value=getattr(bare, f"{percentile}_ms"),
                better="lower",
                headline=percentile == "p99" and concurrency == LATENCY_CONNECTIONS,
                concurrency=concurrency,
                **where,
            )
    memory_where = {
        "blueprint": model.blueprint,
        "model": model.name,
        "requests": memory.requests,
        "concurrency": THROUGHPUT_CONNECTIONS,
    }
    ctx.add(
        # named by the nominal count, so runs compare by name; what wrk got answered is a param
        f"predictor RSS after {memory_count(ctx.budget.quick) // 1000}k requests",
        memory.end_mib,
        "MiB",
        baseline="RSS after warm-up",
        baseline_value=memory.warm_mib,
        better="lower",
        headline=True,
        acceptance=f"growth < {RSS_GROWTH_LIMIT:.0%}",
        growth_pct=round(100 * memory.growth, 2),
        peak_mib=round(memory.peak_mib, 1),
        errors=memory.errors,
        **memory_where,
    )
    ctx.add(
        "predictor RSS after warm-up",
        memory.warm_mib,
        "MiB",
        baseline="RSS at start (ready, no request yet)",
        baseline_value=memory.start_mib,
        better="lower",
        warm_up_requests=memory.warm_up_requests,
        **memory_where,
    )
    curve = ", ".join(f"{n / 1000:.1f}k: {mib:.0f}" for n, mib in memory.samples)
    ctx.note(
        f"{model.blueprint}: RSS {memory.start_mib:.0f} MiB at start -> {memory.warm_mib:.0f} "
        f"after warm-up (throughput rounds + {memory.warm_up_requests:,} requests) -> "
        f"{memory.end_mib:.0f} after {memory.requests:,} more ({memory.seconds:.0f} s, "
        f"{memory.errors} errors): growth vs after-warm-up {memory.growth:+.2%} -> "
        f"{rss_verdict(memory.growth)} (limit {RSS_GROWTH_LIMIT:.0%})"
        + (" (quick run: indicative only)" if ctx.budget.quick else "")
        + f"; MiB by answers: {curve}"
    )
    line = "; ".join(
        f"{c} conns: {points[(DRIFTLOOP, c)].rps:.0f} vs {points[(BARE, c)].rps:.0f} req/s "
        f"({points[(DRIFTLOOP, c)].rps / points[(BARE, c)].rps:.2f}x), p99 "
        f"{points[(DRIFTLOOP, c)].p99_ms:.1f} vs {points[(BARE, c)].p99_ms:.1f} ms"
        for c in (LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS)
    )
    ctx.note(
        f"{model.blueprint}: driftloop vs bare {line}; load average (1/5/15 min) before / "
        f"after the rounds / after the memory run: {' ; '.join(loads)}"
    )


def run(ctx: Context) -> None:
    if not wrk_available():
        raise SectionSkipped("wrk is not installed (make system-deps)")
    ctx.note(f"load average (1/5/15 min) at start: {load_average()}")
    task = ctx.progress.add_task("blueprints", total=len(ORDER))
    failed: dict[str, str] = {}
    for name in ORDER:
        try:
            ctx.progress.update(task, description=f"blueprints: training {name}")
            model = BUILDERS[name](ctx)
            ctx.note(f"{name}: {model.trained_by}; trained in {model.train_seconds:.0f} s")
            measure_blueprint(ctx, model, task)
        except SectionSkipped as exc:
            ctx.note(f"{name}: skipped: {exc}")
        except Exception as exc:  # one blueprint's failure must not lose the others' figures
            (ctx.logs_dir() / f"{name}-error.txt").write_text(traceback.format_exc())
            failed[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            ctx.note(f"{name}: FAILED: {failed[name]}")
        ctx.progress.advance(task)
    ctx.note(f"load average (1/5/15 min) at the end: {load_average()}")
    if failed:
        raise RuntimeError(f"blueprint(s) failed: {', '.join(failed)} (see the notes)")
