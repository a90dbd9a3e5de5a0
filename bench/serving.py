"""Serving: requests/s and p50/p95/p99 for one model behind several ways of serving it.

Rows, per model, protocol (REST v2 via wrk, gRPC v2 via grpc.aio) and
concurrency: (a) driftloop's predictor as shipped -- adaptive batching (its
default limits), payload logging (to a local CloudEvents sink) and the prediction
store on, (b) the same with logging and store off, (c) a bare ``kserve.Model``
around the raw estimator, no batching (the baseline every figure is divided by),
(d) MLServer 1.7.1 + mlserver-mlflow on the same MLflow model folder with its
adaptive batching on at the same limits, (e) the in-process ``predict_proba``
call (the floor); full runs add (a) with batching off. Every server process gets
``OMP_NUM_THREADS=1`` (``bench.procs.server_env``).

Acceptance (issue 19, sentiment, REST v2): (a) at 32 connections >= 4x (c) and
>= 1.5x (d); p99 of (a) at 8 connections <= 1.2x (c)'s; (a) vs (b) at 8
connections >= 0.95 (medians of interleaved rounds).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np

from bench import mlserver as mlserver_runner
from bench.context import Context, SectionSkipped
from bench.fixtures import ModelFixture
from bench.loadgen import (
    LoadResult,
    cpu_share,
    run_grpc_load,
    run_wrk,
    tree_cpu_seconds,
    wrk_available,
)
from bench.models import sentiment_model, tabular_model
from bench.procs import Server, driftloop_predictor, free_port, free_ports, running, server_env

ON, OFF, KSERVE, MLSERVER, INPROC = (
    "driftloop (logging+store on)",
    "driftloop (logging+store off)",
    "kserve baseline",
    "mlserver 1.7.1 (adaptive batching)",
    "in-process predict_proba",
)
# diagnostics for the on/off gap: one of the two switched off
LOGGER_ONLY, STORE_ONLY = "driftloop (logging only)", "driftloop (store only)"
# what batching buys: the product with one model call per request
UNBATCHED = "driftloop (logging+store on, batching off)"
DRIFTLOOP_FLAGS = {
    ON: [],
    OFF: ["--off"],
    LOGGER_ONLY: ["--no-store"],
    STORE_ONLY: ["--no-logger"],
    UNBATCHED: [],
}
DRIFTLOOP_ENV = {UNBATCHED: {"DRIFTLOOP_MAX_BATCH_SIZE": "1"}}
LOGS_TO_SINK = (ON, LOGGER_ONLY, UNBATCHED)
# the acceptance's two concurrencies: latency at 8, throughput at 32
LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS = 8, 32
BASELINE = KSERVE
PROTOCOLS = ("rest-v2", "grpc-v2")


# Five interleaved rounds, quick run included: with two, the "median" is the lower
# round, and one slow 2-second round on a shared machine decided the verdict; with three,
# on/off rounds of one quick run still spread 82-118 req/s on the same server.
PAIRED_ROUNDS = 5


@contextmanager
def start_server(kind: str, model: ModelFixture, ctx: Context, *, sink_url: str | None = None):
    slug = "".join(ch if ch.isalnum() else "-" for ch in kind).strip("-")
    log = ctx.logs_dir() / f"{model.name}-{slug}.log"
    timeout_s = 120.0
    if kind in DRIFTLOOP_FLAGS:
        extra = {"DRIFTLOOP_LOGGER_URL": sink_url} if kind in LOGS_TO_SINK and sink_url else {}
        with driftloop_predictor(
            kind,
            model.name,
            log=log,
            env=extra | DRIFTLOOP_ENV.get(kind, {}),
            flags=DRIFTLOOP_FLAGS[kind],
        ) as server:
            yield server
        return
    http_port, grpc_port = free_ports(2)
    if kind == KSERVE:
        command = [
            sys.executable,
            "-m",
            "bench.kserve_baseline",
            "--model_uri",
            str(model.local_dir),
            "--flavor",
            model.flavor,
            "--model_name",
            model.name,
            "--http_port",
            str(http_port),
            "--grpc_port",
            str(grpc_port),
            "--enable_latency_logging",
            "false",
        ]
        env = server_env()
    elif kind == MLSERVER:
        from driftloop.settings import Settings

        limits = Settings.model_fields  # driftloop's default batching limits, for MLServer too
        repository = mlserver_runner.write_repository(
            ctx.work / "mlserver" / model.name,
            model.name,
            model.local_dir,
            http_port=http_port,
            grpc_port=grpc_port,
            max_batch_size=limits["max_batch_size"].default,
            max_batch_time_ms=limits["max_latency_ms"].default,
            implementation=(
                mlserver_runner.TEXT_RUNTIME
                if model.kind == "text"
                else "mlserver_mlflow.MLflowRuntime"
            ),
        )
        command = mlserver_runner.command(repository)
        env = mlserver_runner.environment(server_env())
        timeout_s = 60.0  # a model that fails to load keeps answering 400, never exits
    else:
        raise ValueError(kind)
    ready = f"http://127.0.0.1:{http_port}/v2/models/{model.name}/ready"
    with running(
        kind,
        command,
        ready_url=ready,
        log=log,
        env=env,
        timeout_s=timeout_s,
        http_port=http_port,
        grpc_port=grpc_port,
    ) as server:
        yield server


@contextmanager
def module_server(
    ctx: Context, name: str, module: str, *args: str, ready_path: str, timeout_s: float
):
    """``python -m module ... --port P`` on a free loopback port, logged to ``name``.log."""
    port = free_port()
    with running(
        name,
        [sys.executable, "-m", module, *args, "--port", str(port)],
        ready_url=f"http://127.0.0.1:{port}{ready_path}",
        log=ctx.logs_dir() / f"{name}.log",
        env=server_env(),
        timeout_s=timeout_s,
        http_port=port,
    ) as server:
        yield server


def cloudevents_sink(ctx: Context):
    return module_server(ctx, "sink", "bench.sink", ready_path="/count", timeout_s=30)


def sink_count(sink: Server) -> int:
    return int(httpx.get(f"{sink.base_url}/count", timeout=5).json()["total"])


def warm_up(server: Server, model: ModelFixture, requests: int = 20) -> None:
    """A few sequential requests: first-call costs (imports, caches) stay out of the figures."""
    url = f"{server.base_url}/v2/models/{model.name}/infer"
    with httpx.Client(timeout=30) as client:
        for _ in range(requests):
            response = client.post(
                url, content=model.body("v2"), headers={"content-type": "application/json"}
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"{server.name} answered {response.status_code}: {response.text[:300]}"
                )


def measure(
    server: Server,
    model: ModelFixture,
    protocol: str,
    concurrency: int,
    seconds: float,
    request_file: Path,
    batch: int = 1,
) -> LoadResult:
    if protocol == "rest-v2":
        return run_wrk(
            f"{server.base_url}/v2/models/{model.name}/infer",
            model.body("v2", batch),
            concurrency=concurrency,
            seconds=seconds,
            server_pid=server.pid,
        )
    return run_grpc_load(
        f"127.0.0.1:{server.grpc_port}",
        model.name,
        request_file,
        concurrency=concurrency,
        seconds=seconds,
        server_pid=server.pid,
    )


def inprocess_latency(model: ModelFixture, seconds: float, batch: int = 1) -> dict:
    """The floor: predict_proba called in this process, one batch after another."""
    model.inprocess_predict(batch)
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        model.inprocess_predict(batch)
        latencies.append(time.perf_counter() - started)
    millis = np.asarray(latencies) * 1000
    return {
        "rps": len(latencies) / float(np.sum(latencies)),
        "p50_ms": float(np.percentile(millis, 50)),
        "p95_ms": float(np.percentile(millis, 95)),
        "p99_ms": float(np.percentile(millis, 99)),
    }


def server_plan(
    model: ModelFixture, mlserver_reason: str | None, quick: bool, concurrencies: tuple[int, ...]
) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """(server, protocols, concurrencies) to measure for ``model``."""
    plan = []
    if model.kind == "text":  # driftloop's predictor serves text classifiers
        plan += [(ON, PROTOCOLS, concurrencies), (OFF, PROTOCOLS, concurrencies)]
        if not quick:
            plan += [(LOGGER_ONLY, ("rest-v2",), (8,)), (STORE_ONLY, ("rest-v2",), (8,))]
            plan += [(UNBATCHED, ("rest-v2",), (LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS))]
    plan.append((KSERVE, PROTOCOLS, concurrencies))
    if mlserver_reason is None:
        plan.append((MLSERVER, PROTOCOLS, concurrencies))
    return plan


def wait_for_sink(sink: Server, expected: int, timeout_s: float = 15.0) -> int:
    """The sink's count once it reaches ``expected`` or stops growing (the logger is async)."""
    deadline = time.monotonic() + timeout_s
    last, still = -1, 0
    while time.monotonic() < deadline:
        count = sink_count(sink)
        if count >= expected:
            return count
        still = still + 1 if count == last else 0
        if still >= 4:
            return count
        last = count
        time.sleep(0.25)
    return sink_count(sink)


def paired_on_off(ctx: Context, model: ModelFixture, request_file: Path, task) -> dict:
    """Logging+store on vs off at 8 connections, both servers up, rounds in ABBA order.

    Measured one after the other, a change in the machine's load lands on one
    side only; alternating the order and taking each side's median cancels a
    drift that lasts longer than a round.
    """
    rounds = PAIRED_ROUNDS
    paired: dict[str, dict[str, list[LoadResult]]] = {}
    with ExitStack() as stack:
        sink = stack.enter_context(cloudevents_sink(ctx))
        servers = {
            ON: stack.enter_context(start_server(ON, model, ctx, sink_url=f"{sink.base_url}/")),
            OFF: stack.enter_context(start_server(OFF, model, ctx)),
        }
        for server in servers.values():
            warm_up(server, model)
        for protocol in PROTOCOLS:
            results: dict[str, list[LoadResult]] = {ON: [], OFF: []}
            for index in range(rounds):
                order = (ON, OFF) if index % 2 == 0 else (OFF, ON)
                for kind in order:
                    ctx.progress.update(
                        task, description=f"serving {model.name} on/off round {index + 1}"
                    )
                    results[kind].append(
                        measure(
                            servers[kind],
                            model,
                            protocol,
                            8,
                            ctx.budget.load_seconds,
                            request_file,
                        )
                    )
                    ctx.progress.advance(task)
            paired[protocol] = results
    return {
        protocol: {kind: median_result(runs) for kind, runs in results.items()}
        | {"rounds": {kind: [round(r.rps, 1) for r in runs] for kind, runs in results.items()}}
        for protocol, results in paired.items()
    }


def interleaved_acceptance(
    ctx: Context, model: ModelFixture, request_file: Path, task, with_mlserver: bool
) -> dict:
    """Issue 19's points measured in interleaved rounds, every server up at once: driftloop
    (on), the bare KServe server and MLServer at 32 connections, driftloop and bare KServe
    at 8 (for p99), REST v2. On a shared machine a load change during one server's turn
    lands on one side only; alternating the order and taking medians cancels it.

    Returns ``{(kind, concurrency): LoadResult}`` (the median-throughput round, its p99
    replaced by the median p99 of the rounds) and the rounds' req/s."""
    import dataclasses

    runs: dict[tuple[str, int], list[LoadResult]] = {}
    with ExitStack() as stack:
        sink = stack.enter_context(cloudevents_sink(ctx))
        servers: dict[str, Server] = {}
        for kind in (ON, KSERVE, *((MLSERVER,) if with_mlserver else ())):
            try:
                servers[kind] = stack.enter_context(
                    start_server(kind, model, ctx, sink_url=f"{sink.base_url}/")
                )
                warm_up(servers[kind], model)
            except Exception as exc:
                if kind != MLSERVER:
                    raise
                ctx.note(f"MLServer left out of the interleaved rounds: {str(exc)[:200]}")
                servers.pop(kind, None)
        points = [(kind, THROUGHPUT_CONNECTIONS) for kind in servers]
        points += [(ON, LATENCY_CONNECTIONS), (KSERVE, LATENCY_CONNECTIONS)]
        for index in range(PAIRED_ROUNDS):
            for kind, concurrency in points if index % 2 == 0 else points[::-1]:
                ctx.progress.update(
                    task, description=f"serving {model.name} acceptance round {index + 1}"
                )
                runs.setdefault((kind, concurrency), []).append(
                    measure(
                        servers[kind],
                        model,
                        ACCEPTANCE_PROTOCOL,
                        concurrency,
                        ctx.budget.load_seconds,
                        request_file,
                    )
                )
                ctx.progress.advance(task)
    medians = {
        point: dataclasses.replace(
            median_result(results), p99_ms=float(np.median([r.p99_ms for r in results]))
        )
        for point, results in runs.items()
    }
    rounds = {
        f"{kind} c={concurrency}": [round(r.rps, 1) for r in results]
        for (kind, concurrency), results in runs.items()
    }
    return {"results": medians, "rounds": rounds}


def median_result(results: list[LoadResult]) -> LoadResult:
    """The run with the median throughput (the lower middle one for an even count)."""
    ranked = sorted(results, key=lambda result: result.rps)
    return ranked[(len(ranked) - 1) // 2]


def run(ctx: Context) -> None:
    if not wrk_available():
        raise SectionSkipped("wrk is not installed (make system-deps)")
    budget = ctx.budget
    mlserver_reason = mlserver_runner.ensure_mlserver(ctx.logs_dir() / "setup-mlserver.log")
    if mlserver_reason:
        ctx.note(f"MLServer row skipped: {mlserver_reason}")
    models = [sentiment_model(ctx)]
    if not budget.quick:
        models.append(tabular_model(ctx))
    table: dict[tuple[str, str, str, int], LoadResult] = {}
    floors: dict[str, dict] = {}
    # the acceptance needs 8 and 32 connections, quick run included
    concurrencies = tuple(
        sorted({*budget.concurrencies, LATENCY_CONNECTIONS, THROUGHPUT_CONNECTIONS})
    )
    plans = {m.name: server_plan(m, mlserver_reason, budget.quick, concurrencies) for m in models}
    points = sum(len(p) * len(c) for plan in plans.values() for _, p, c in plan)
    text_models = [m for m in models if m.kind == "text"]
    points += len(text_models) * len(PROTOCOLS) * 2 * PAIRED_ROUNDS
    # interleaved acceptance rounds: each server at 32 conns, driftloop and bare at 8
    points += len(text_models) * ((3 if mlserver_reason is None else 2) + 2) * PAIRED_ROUNDS
    task = ctx.progress.add_task("serving", total=points)
    logging_checks: dict[tuple[str, str], dict] = {}
    paired: dict[str, dict] = {}
    for model in models:
        request_file = ctx.work / f"{model.name}-v2-request.json"
        request_file.write_text(json.dumps(model.v2_request(1)))
        floors[model.name] = inprocess_latency(model, budget.load_seconds)
        for kind, protocols, concurrencies in plans[model.name]:
            with ExitStack() as stack:
                sink = stack.enter_context(cloudevents_sink(ctx)) if kind in LOGS_TO_SINK else None
                try:
                    server = stack.enter_context(
                        start_server(
                            kind, model, ctx, sink_url=f"{sink.base_url}/" if sink else None
                        )
                    )
                    warm_up(server, model)
                except Exception as exc:
                    if kind != MLSERVER:
                        raise
                    ctx.note(f"MLServer could not serve {model.name}: {str(exc).splitlines()[0]}")
                    ctx.progress.advance(task, len(protocols) * len(concurrencies))
                    continue
                sink_before = wait_for_sink(sink, 0, timeout_s=2) if sink else 0
                sink_cpu_before = tree_cpu_seconds(sink.pid) if sink else 0.0
                started = time.perf_counter()
                served = 0
                for protocol in protocols:
                    for concurrency in concurrencies:
                        ctx.progress.update(
                            task,
                            description=f"serving {model.name} {kind} {protocol} c={concurrency}",
                        )
                        try:
                            result = measure(
                                server,
                                model,
                                protocol,
                                concurrency,
                                budget.load_seconds,
                                request_file,
                            )
                        except RuntimeError as exc:
                            if kind != MLSERVER:
                                raise
                            # a third-party baseline failing one protocol is a finding, not a
                            # reason to lose the other rows
                            found = re.search(r'details = "([^"]*)"', str(exc))
                            reason = found.group(1) if found else str(exc).strip()[-200:]
                            ctx.note(
                                f"MLServer {model.name} {protocol} c={concurrency} failed: "
                                f"{reason} (see logs/serving/)"
                            )
                            ctx.progress.advance(task)
                            continue
                        table[(model.name, kind, protocol, concurrency)] = result
                        served += result.requests - result.errors
                        ctx.progress.advance(task)
                if sink is not None:
                    elapsed = time.perf_counter() - started
                    sink_cpu = tree_cpu_seconds(sink.pid) - sink_cpu_before
                    delivered = wait_for_sink(sink, sink_before + 2 * served) - sink_before
                    shares = [
                        r.server_cpu_share
                        for (n, k, _, _), r in table.items()
                        if n == model.name and k == kind and r.server_cpu_share is not None
                    ]
                    logging_checks[(model.name, kind)] = {
                        "delivered": delivered,
                        "expected": 2 * served,
                        "sink_cpu_share": cpu_share(sink_cpu, elapsed),
                        "server_cpu_share": sum(shares) / len(shares) if shares else None,
                    }
        if model.kind == "text":
            paired[model.name] = paired_on_off(ctx, model, request_file, task)
            paired[model.name]["interleaved"] = interleaved_acceptance(
                ctx, model, request_file, task, with_mlserver=mlserver_reason is None
            )
    ctx.cache["serving_table"] = table
    emit_figures(ctx, models, table, floors, logging_checks, paired)


def emit_figures(
    ctx: Context,
    models: list[ModelFixture],
    table: dict,
    floors: dict,
    logging_checks: dict,
    paired: dict,
) -> None:
    for model in models:
        floor = floors[model.name]
        base_floor = table.get((model.name, BASELINE, "rest-v2", 1)) or table.get(
            (model.name, BASELINE, "rest-v2", ctx.budget.concurrencies[0])
        )
        # the in-process call against the KServe baseline at its lowest concurrency
        floor_params = dict(
            baseline=f"{BASELINE} REST",
            model=model.name,
            server=INPROC,
            protocol="in-process",
            concurrency=1,
        )
        for figure, value, unit, attribute, better in (
            ("throughput", floor["rps"], "req/s", "rps", "higher"),
            ("p99 latency", floor["p99_ms"], "ms", "p99_ms", "lower"),
        ):
            ctx.add(
                figure,
                value,
                unit,
                baseline_value=getattr(base_floor, attribute) if base_floor else None,
                better=better,
                note="one thread calling predict_proba(1 row) back to back; the floor",
                **floor_params,
            )
        for (name, kind, protocol, concurrency), result in table.items():
            if name != model.name:
                continue
            baseline = table.get((name, BASELINE, protocol, concurrency))
            params = dict(
                model=name,
                server=kind,
                protocol=protocol,
                concurrency=concurrency,
                generator=result.generator,
            )
            ctx.add(
                "throughput",
                result.rps,
                "req/s",
                baseline=f"{BASELINE} same protocol",
                baseline_value=baseline.rps if baseline else None,
                better="higher",
                note=f"{result.errors} errors" if result.errors else "",
                **params,
            )
            for pct in ("p50", "p95", "p99"):
                ctx.add(
                    f"{pct} latency",
                    getattr(result, f"{pct}_ms"),
                    "ms",
                    baseline=f"{BASELINE} same protocol",
                    baseline_value=getattr(baseline, f"{pct}_ms") if baseline else None,
                    better="lower",
                    **params,
                )
            ctx.add(
                "load generator CPU",
                result.generator_cpu_share * 100,
                "% of machine",
                baseline="server process tree CPU",
                baseline_value=(
                    result.server_cpu_share * 100 if result.server_cpu_share is not None else None
                ),
                better="lower",
                **params,
            )
            cpu_ms = server_cpu_ms_per_request(result)
            base_cpu_ms = server_cpu_ms_per_request(baseline) if baseline else None
            if cpu_ms is not None:
                ctx.add(
                    "server CPU per answered request",
                    cpu_ms,
                    "ms",
                    baseline=f"{BASELINE} same protocol",
                    baseline_value=base_cpu_ms,
                    better="lower",
                    note="process tree CPU over the run / answers; inflated by the machine's load",
                    **params,
                )
        acceptance(ctx, model, table, paired.get(model.name, {}))
        for (name, kind), check in logging_checks.items():
            if name != model.name:
                continue
            ctx.add(
                "payload events delivered",
                check["delivered"],
                "CloudEvents",
                baseline="2 x requests answered (request + response)",
                baseline_value=check["expected"],
                better="higher",
                model=name,
                server=kind,
            )
            ctx.add(
                "CloudEvents sink CPU",
                check["sink_cpu_share"] * 100,
                "% of machine",
                baseline="server process tree CPU, same runs",
                baseline_value=(
                    check["server_cpu_share"] * 100
                    if check["server_cpu_share"] is not None
                    else None
                ),
                better="lower",
                model=name,
                server=kind,
                note="the sink shares the 2 cores with the server under test",
            )


def server_cpu_ms_per_request(result: LoadResult) -> float | None:
    """CPU the server's process tree spent per answered request: what it costs whatever
    share of a shared machine it got (throughput alone moves with that share)."""
    if result.server_cpu_share is None or result.rps <= 0:
        return None
    cores = os.cpu_count() or 1
    return result.server_cpu_share * cores / result.rps * 1000.0


def throughput_vs(
    ctx: Context,
    name: str,
    result: LoadResult,
    base: LoadResult,
    base_label: str,
    concurrency: int = LATENCY_CONNECTIONS,
    **params,
):
    """One throughput figure at ``concurrency`` connections against another server's."""
    return ctx.add(
        name,
        result.rps,
        "req/s",
        baseline=base_label,
        baseline_value=base.rps,
        better="higher",
        concurrency=concurrency,
        **params,
    )


# issue 19's acceptance, on REST v2 (gRPC is reported beside it)
MIN_VS_BARE_AT_32, MIN_VS_MLSERVER_AT_32 = 4.0, 1.5
MAX_P99_VS_BARE_AT_8, MIN_ON_OFF = 1.2, 0.95
ACCEPTANCE_PROTOCOL = "rest-v2"


def verdict(ctx: Context, passed: bool) -> str:
    word = "PASS" if passed else "FAIL"
    if ctx.budget.quick:
        word += f" (quick run, {ctx.budget.load_seconds:g}-s points: indicative only)"
    return word


def acceptance(ctx: Context, model: ModelFixture, table: dict, paired: dict) -> None:
    """Issue 19's ratios: driftloop as shipped (batching, logging, store) against the bare
    KServe server and MLServer with its adaptive batching, p99 at 8 connections, and
    logging+store on vs off (the verdict uses the interleaved rounds of ``paired_on_off``;
    the single sequential pass of the main table is reported beside it)."""
    for protocol in PROTOCOLS:
        where = {"model": model.name, "protocol": protocol}
        judged = protocol == ACCEPTANCE_PROTOCOL
        rounds = paired.get(protocol)
        if rounds:
            figure = throughput_vs(
                ctx,
                "throughput with logging+store on vs off",
                rounds[ON],
                rounds[OFF],
                OFF,
                headline=judged,
                acceptance=f"ratio >= {MIN_ON_OFF}" if judged else "",
                method="median of interleaved rounds (ABBA), both servers up",
                rounds_rps=rounds["rounds"],
                **where,
            )
            if judged:
                ctx.note(
                    f"acceptance ({model.name}, {protocol}, 8 conns): logging+store on / off "
                    f"= {figure.ratio:.3f} -> {verdict(ctx, figure.ratio >= MIN_ON_OFF)} "
                    f"(limit {MIN_ON_OFF}; medians of {len(rounds['rounds'][ON])} interleaved "
                    f"rounds: on {rounds['rounds'][ON]}, off {rounds['rounds'][OFF]} req/s)"
                )
        on = table.get((model.name, ON, protocol, LATENCY_CONNECTIONS))
        off = table.get((model.name, OFF, protocol, LATENCY_CONNECTIONS))
        if on and off:
            throughput_vs(
                ctx,
                "throughput with logging+store on vs off (one sequential pass)",
                on,
                off,
                OFF,
                **where,
            )
        for diagnostic in (LOGGER_ONLY, STORE_ONLY):
            part = table.get((model.name, diagnostic, protocol, LATENCY_CONNECTIONS))
            if part and off:
                throughput_vs(
                    ctx,
                    "throughput with one of logging/store on vs off",
                    part,
                    off,
                    OFF,
                    server=diagnostic,
                    **where,
                )
        # the verdicts use the interleaved rounds where they ran (REST v2), else the table
        interleaved = paired.get("interleaved") if judged else None
        source = interleaved["results"] if interleaved else {}
        method = (
            {
                "method": f"medians of {PAIRED_ROUNDS} interleaved rounds, all servers up",
                "rounds_rps": interleaved["rounds"],
            }
            if interleaved
            else {}
        )

        def point(
            kind: str, concurrency: int, source: dict = source, protocol: str = protocol
        ) -> LoadResult | None:
            found = source.get((kind, concurrency))
            return found or table.get((model.name, kind, protocol, concurrency))

        busy = point(ON, THROUGHPUT_CONNECTIONS)
        for other, label, limit in (
            (KSERVE, "driftloop (on) vs bare kserve.Model throughput", MIN_VS_BARE_AT_32),
            (MLSERVER, "driftloop (on) vs MLServer (batching) throughput", MIN_VS_MLSERVER_AT_32),
            (UNBATCHED, "driftloop (on) batching on vs off throughput", None),
        ):
            base = point(other, THROUGHPUT_CONNECTIONS)
            if not (busy and base):
                continue
            figure = throughput_vs(
                ctx,
                label,
                busy,
                base,
                other,
                THROUGHPUT_CONNECTIONS,
                headline=judged and limit is not None,
                acceptance=f"ratio >= {limit}" if judged and limit else "",
                **method,
                **where,
            )
            if judged and limit is not None:
                ctx.note(
                    f"acceptance ({model.name}, {protocol}, {THROUGHPUT_CONNECTIONS} conns): "
                    f"driftloop (batching+logging+store) / {other} = {figure.ratio:.2f}x "
                    f"({busy.rps:.0f} vs {base.rps:.0f} req/s) -> "
                    f"{verdict(ctx, figure.ratio >= limit)} (limit {limit}x)"
                )
        bare = point(KSERVE, LATENCY_CONNECTIONS)
        on = point(ON, LATENCY_CONNECTIONS)
        if on and bare:
            figure = ctx.add(
                "p99 latency vs bare kserve.Model",
                on.p99_ms,
                "ms",
                baseline=KSERVE,
                baseline_value=bare.p99_ms,
                better="lower",
                headline=judged,
                acceptance=f"ratio <= {MAX_P99_VS_BARE_AT_8}" if judged else "",
                concurrency=LATENCY_CONNECTIONS,
                **method,
                **where,
            )
            if judged:
                ctx.note(
                    f"acceptance ({model.name}, {protocol}, {LATENCY_CONNECTIONS} conns): p99 "
                    f"driftloop {on.p99_ms:.1f} ms / bare {bare.p99_ms:.1f} ms = "
                    f"{figure.ratio:.2f} -> {verdict(ctx, figure.ratio <= MAX_P99_VS_BARE_AT_8)}"
                    f" (limit {MAX_P99_VS_BARE_AT_8})"
                )
