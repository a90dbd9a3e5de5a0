"""Soak: the predictor at its measured knee for 10 minutes (60 s with --quick).

driftloop's predictor as shipped (prediction store on, payload logging to a
local CloudEvents sink, registry polling) serves the sentiment champion. A
short concurrency ramp finds the knee: the concurrency beyond which doubling
the connections adds less than 10 % throughput (latency only climbs from
there). Then :mod:`bench.rest_load` drives REST v2 at the knee for the soak's
duration while the predictor's resident memory is sampled every few seconds.

Acceptance (issue 13): 0 errors (non-2xx and transport errors), every answered
prediction stored (rows written in the window == 2xx answers, counted once the
store writer has flushed) and RSS growth under 5 % (median of the last minute
against the median of the first, the ramp having warmed the process). Writes
``soak_rss_throughput.png`` (RSS and throughput over time). The store is
SQLite; with ``BENCH_SOAK_POSTGRES_URL`` (an admin URL) the whole soak runs
again against a fresh PostgreSQL database (``soak_rss_throughput_postgresql.png``).

:func:`soak` is also what ``tests/integration/test_soak.py`` runs for ~12 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.context import Context
from bench.models import sentiment_model
from bench.procs import Server, driftloop_predictor
from bench.serving import cloudevents_sink, wait_for_sink, warm_up

# an admin URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres): the soak then
# runs a second time against a fresh database there, the cluster's store
POSTGRES_ENV = "BENCH_SOAK_POSTGRES_URL"
KNEE_GAIN = 0.10  # doubling the connections must add at least this much throughput
RSS_GROWTH_LIMIT = 0.05
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Plan:
    ramp: tuple[int, ...]  # concurrencies of the knee ramp, each doubling the last
    ramp_seconds: float
    soak_seconds: float
    sample_seconds: float  # RSS sampling period
    window_seconds: float  # the "first minute" / "last minute" RSS windows

    @classmethod
    def for_budget(cls, quick: bool) -> Plan:
        if quick:
            return cls((1, 2, 4, 8), 3.0, 60.0, 1.0, 10.0)
        return cls((1, 2, 4, 8, 16), 5.0, 600.0, 3.0, 60.0)


# --- measuring ----------------------------------------------------------------------------


def run_rest_load(url: str, body: bytes, *, concurrency: int, seconds: float) -> dict:
    """:mod:`bench.rest_load` in a child process; its JSON result."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as handle:
        handle.write(body)
        body_file = handle.name
    try:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.rest_load",
                "--url",
                url,
                "--body",
                body_file,
                "--concurrency",
                str(concurrency),
                "--seconds",
                str(seconds),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + 120,
        )
    finally:
        os.unlink(body_file)
    if completed.returncode != 0:
        raise RuntimeError(
            f"bench.rest_load exited {completed.returncode}: {completed.stderr[-1500:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its live children (REST workers), in MiB."""
    import psutil

    root = psutil.Process(pid)
    total = root.memory_info().rss
    for child in root.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def settled_rows(store_url: str, model_name: str, timeout_s: float = 60.0) -> int:
    """Rows of ``model_name`` in the store once the writer has flushed (stable for 1 s)."""
    from driftloop.store import PredictionStore

    store = PredictionStore(store_url, run_migrations=False)
    try:
        deadline = time.monotonic() + timeout_s
        count, stable_since = store.count_predictions(model_name), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            again = store.count_predictions(model_name)
            if again != count:
                count, stable_since = again, time.monotonic()
            elif time.monotonic() - stable_since >= 1.0:
                break
        return count
    finally:
        store.engine.dispose()


class RssSampler:
    """Samples a process tree's RSS every ``period`` seconds on a thread."""

    def __init__(self, pid: int, period: float) -> None:
        self.pid = pid
        self.period = period
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - started, tree_rss_mib(self.pid)))
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class SoakRun:
    concurrency: int
    seconds: float
    load: dict  # bench.rest_load's result
    rss: list[tuple[float, float]] = field(default_factory=list)
    rows_before: int = 0
    rows_after: int = 0
    window_seconds: float = 60.0

    @property
    def answered(self) -> int:
        return int(self.load["ok"])

    @property
    def errors(self) -> int:
        return int(self.load["errors"])

    @property
    def rows(self) -> int:
        return self.rows_after - self.rows_before

    def rss_windows(self) -> tuple[float, float]:
        """(median RSS of the first window, median RSS of the last window), MiB."""
        end = self.rss[-1][0] if self.rss else 0.0
        first = [mib for t, mib in self.rss if t < self.window_seconds]
        last = [mib for t, mib in self.rss if t >= end - self.window_seconds]
        return statistics.median(first), statistics.median(last)

    @property
    def rss_growth(self) -> float:
        first, last = self.rss_windows()
        return (last - first) / first

    def verdicts(self) -> dict[str, bool]:
        return {
            "0 errors": self.errors == 0,
            "rows == answered": self.rows == self.answered,
            f"RSS growth < {RSS_GROWTH_LIMIT:.0%}": self.rss_growth < RSS_GROWTH_LIMIT,
        }


def soak(
    url: str,
    body: bytes,
    *,
    pid: int,
    store_url: str,
    model_name: str,
    concurrency: int,
    seconds: float,
    sample_seconds: float,
    window_seconds: float,
) -> SoakRun:
    """Drive ``url`` at ``concurrency`` for ``seconds``; RSS sampled, store rows counted."""
    rows_before = settled_rows(store_url, model_name)
    with RssSampler(pid, sample_seconds) as sampler:
        load = run_rest_load(url, body, concurrency=concurrency, seconds=seconds)
    return SoakRun(
        concurrency=concurrency,
        seconds=seconds,
        load=load,
        rss=sampler.samples,
        rows_before=rows_before,
        rows_after=settled_rows(store_url, model_name),
        window_seconds=window_seconds,
    )


def knee_of(points: list[dict]) -> int:
    """The first concurrency whose successor adds less than ``KNEE_GAIN`` throughput.

    The ramp's last concurrency when every step still gains that much.
    """
    for here, there in zip(points, points[1:], strict=False):
        if there["rps"] < here["rps"] * (1 + KNEE_GAIN):
            return here["concurrency"]
    return points[-1]["concurrency"]


def find_knee(
    url: str, body: bytes, ramp: tuple[int, ...], seconds: float
) -> tuple[int, list[dict]]:
    """The knee of a concurrency ramp, and every point of the ramp."""
    points = [run_rest_load(url, body, concurrency=c, seconds=seconds) for c in ramp]
    return knee_of(points), points


# --- the bench section ---------------------------------------------------------------------


def start_predictor(ctx: Context, model, store: str, store_url: str, sink_url: str):  # noqa: ANN001, ANN201
    return driftloop_predictor(
        f"driftloop (soak, {store})",
        model.name,
        log=ctx.logs_dir() / f"{model.name}-predictor-{store}.log",
        env={"DRIFTLOOP_STORE_URL": store_url, "DRIFTLOOP_LOGGER_URL": sink_url},
    )


@contextmanager
def fresh_postgres_database(admin_url: str):
    """A new, empty database on the server of ``admin_url`` for the block; dropped after."""
    import sqlalchemy as sa

    name = f"driftloop_soak_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def soak_one_store(ctx: Context, model, plan: Plan, store: str, store_url: str, task) -> None:  # noqa: ANN001
    body = model.body("v2")
    with ExitStack() as stack:
        sink: Server = stack.enter_context(cloudevents_sink(ctx))
        predictor: Server = stack.enter_context(
            start_predictor(ctx, model, store, store_url, f"{sink.base_url}/")
        )
        warm_up(predictor, model)
        url = f"{predictor.base_url}/v2/models/{model.name}/infer"
        ctx.progress.update(task, description=f"soak ({store}): knee ramp")
        knee, ramp = find_knee(url, body, plan.ramp, plan.ramp_seconds)
        ctx.progress.advance(task, len(plan.ramp))
        ctx.progress.update(
            task, description=f"soak ({store}): {plan.soak_seconds:.0f} s at {knee} conns"
        )
        events_before = wait_for_sink(sink, 0, timeout_s=2)
        result = soak(
            url,
            body,
            pid=predictor.pid,
            store_url=store_url,
            model_name=model.name,
            concurrency=knee,
            seconds=plan.soak_seconds,
            sample_seconds=plan.sample_seconds,
            window_seconds=plan.window_seconds,
        )
        events = wait_for_sink(sink, events_before + 2 * result.answered) - events_before
        ctx.progress.advance(task)
    report(ctx, model.name, store, plan, knee, ramp, result, events)
    plot(ctx, result, knee, store)


def run(ctx: Context) -> None:
    plan = Plan.for_budget(ctx.budget.quick)
    model = sentiment_model(ctx)
    postgres_admin = os.environ.get(POSTGRES_ENV)
    stores = ["sqlite"] + (["postgresql"] if postgres_admin else [])
    task = ctx.progress.add_task("soak", total=len(stores) * (len(plan.ramp) + 1))
    soak_one_store(ctx, model, plan, "sqlite", f"sqlite:///{ctx.work / 'soak-store.db'}", task)
    if not postgres_admin:
        ctx.note(f"PostgreSQL store not soaked: set {POSTGRES_ENV} (an admin URL) to add it")
        return
    with fresh_postgres_database(postgres_admin) as store_url:
        soak_one_store(ctx, model, plan, "postgresql", store_url, task)


def report(
    ctx: Context,
    model: str,
    store: str,
    plan: Plan,
    knee: int,
    ramp: list[dict],
    result: SoakRun,
    events: int,
) -> None:
    where = {"model": model, "store": store, "protocol": "rest-v2", "generator": "bench.rest_load"}
    for point in ramp:
        ctx.add(
            "knee ramp throughput",
            point["rps"],
            "req/s",
            baseline="1 connection",
            baseline_value=ramp[0]["rps"],
            better="higher",
            concurrency=point["concurrency"],
            p99_ms=round(point["p99_ms"], 2),
            seconds=plan.ramp_seconds,
            **where,
        )
    ctx.note(
        f"{store} store: knee {knee} connections (the ramp {list(plan.ramp)} gave "
        + ", ".join(f"{p['rps']:.0f} req/s p99 {p['p99_ms']:.0f} ms" for p in ramp)
        + f"; the knee is the last step before one that adds < {KNEE_GAIN:.0%})"
    )
    soak_params = {**where, "concurrency": knee, "seconds": plan.soak_seconds}
    ctx.add(
        "soak errors (non-2xx + transport)",
        result.errors,
        "requests",
        baseline="acceptance: 0",
        baseline_value=0,
        better="lower",
        headline=True,
        non_2xx=result.load["non_2xx"],
        transport_errors=result.load["transport_errors"],
        **soak_params,
    )
    ctx.add(
        "soak rows stored",
        result.rows,
        "rows",
        baseline="2xx answers in the same window",
        baseline_value=result.answered,
        better="higher",
        headline=True,
        **soak_params,
    )
    first, last = result.rss_windows()
    ctx.add(
        "soak predictor RSS, last window median",
        last,
        "MiB",
        baseline="first window median",
        baseline_value=first,
        better="lower",
        headline=True,
        window_seconds=plan.window_seconds,
        samples=len(result.rss),
        **soak_params,
    )
    ctx.add(
        "soak throughput",
        result.load["rps"],
        "req/s",
        baseline=f"knee ramp at {knee} connections",
        baseline_value=next(p["rps"] for p in ramp if p["concurrency"] == knee),
        better="higher",
        p50_ms=round(result.load["p50_ms"], 2),
        p95_ms=round(result.load["p95_ms"], 2),
        p99_ms=round(result.load["p99_ms"], 2),
        **soak_params,
    )
    ctx.add(
        "soak payload events delivered",
        events,
        "CloudEvents",
        baseline="2 x answers (request + response)",
        baseline_value=2 * result.answered,
        better="higher",
        **soak_params,
    )
    verdicts = result.verdicts()
    ctx.note(
        f"soak, {store} store ({plan.soak_seconds:.0f} s at {knee} conns): "
        f"{result.answered} answered, "
        f"{result.errors} errors, {result.rows} rows stored, RSS {first:.1f} -> {last:.1f} MiB "
        f"({result.rss_growth:+.2%}) -> "
        + "; ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in verdicts.items())
        + (" (quick run: indicative only)" if ctx.budget.quick else "")
    )


def plot(ctx: Context, result: SoakRun, knee: int, store: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rss_ax, rps_ax) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    rss_ax.plot([t for t, _ in result.rss], [mib for _, mib in result.rss], color="tab:purple")
    first, last = result.rss_windows()
    rss_ax.axhline(
        first * (1 + RSS_GROWTH_LIMIT), color="tab:red", linestyle=":", label="+5 % of first window"
    )
    rss_ax.set_ylabel("predictor RSS (MiB)")
    rss_ax.legend(fontsize=8)
    rss_ax.grid(True, alpha=0.3)
    # whole seconds only: the last, partial one holds just the requests in flight at the end
    timeline = result.load["timeline"][: int(result.seconds)]
    bucket = 10 if len(timeline) > 120 else 2
    xs, ys = [], []
    for start in range(0, len(timeline), bucket):
        chunk = timeline[start : start + bucket]
        xs.append(start + len(chunk) / 2)
        ys.append(sum(chunk) / len(chunk))
    rps_ax.plot(xs, ys, color="tab:blue")
    rps_ax.set_ylabel(f"answers/s ({bucket}-s mean)")
    rps_ax.set_xlabel("seconds into the soak")
    rps_ax.grid(True, alpha=0.3)
    connections = f"{knee} connection" + ("s" if knee != 1 else "")
    fig.suptitle(f"Soak at the knee ({connections}, REST v2, {store} store + logging on)")
    fig.tight_layout()
    path = ctx.out / (
        "soak_rss_throughput.png" if store == "sqlite" else f"soak_rss_throughput_{store}.png"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    ctx.results.artifact(ctx.section, path)
