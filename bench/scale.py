"""Scale: serving latency vs payload batch size, training time vs training rows (with plots).

Serving: REST v2 at one connection (latency, not throughput) with batches of
1, 16 and 128 texts, driftloop's predictor (logging+store on) against the
KServe baseline on the same sentiment model. Training:
``driftloop.training.candidates.train_candidates`` (every candidate, MLflow
logging included) on growing samples of the ``sentiment-tweets`` corpus; the
baseline of each size is the smallest size scaled linearly, so a ratio above 1
means worse than linear.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from bench.context import Context, SectionSkipped
from bench.loadgen import wrk_available
from bench.models import sentiment_model
from bench.serving import KSERVE, ON, cloudevents_sink, measure, start_server, warm_up

SCALE_DATASET = "sentiment-tweets"


def serving_vs_batch(ctx: Context) -> dict[str, dict[int, float]]:
    model = sentiment_model(ctx)
    task = ctx.progress.add_task("scale: batch sizes", total=2 * len(ctx.budget.batch_sizes))
    latencies: dict[str, dict[int, float]] = {}
    for kind in (ON, KSERVE):
        with ExitStack() as stack:
            sink = stack.enter_context(cloudevents_sink(ctx)) if kind == ON else None
            server = stack.enter_context(
                start_server(kind, model, ctx, sink_url=f"{sink.base_url}/" if sink else None)
            )
            warm_up(server, model)
            for batch in ctx.budget.batch_sizes:
                result = measure(
                    server,
                    model,
                    "rest-v2",
                    1,
                    ctx.budget.load_seconds,
                    request_file=ctx.work / "unused.json",
                    batch=batch,
                )
                latencies.setdefault(kind, {})[batch] = result.p50_ms
                latencies.setdefault(f"{kind} p99", {})[batch] = result.p99_ms
                latencies.setdefault(f"{kind} instances/s", {})[batch] = result.rps * batch
                ctx.progress.advance(task)
    figures = (
        ("p50 latency vs batch size", "", "ms", "lower"),
        ("p99 latency vs batch size", " p99", "ms", "lower"),
        ("instances/s vs batch size", " instances/s", "instances/s", "higher"),
    )
    for batch in ctx.budget.batch_sizes:
        for figure, series, unit, better in figures:
            ctx.add(
                figure,
                latencies[ON + series][batch],
                unit,
                baseline=KSERVE,
                baseline_value=latencies[KSERVE + series][batch],
                better=better,
                model=model.name,
                server=ON,
                batch=batch,
                concurrency=1,
                protocol="rest-v2",
            )
    return latencies


def training_vs_rows(ctx: Context) -> dict[int, float]:
    try:
        from driftloop.blueprints import get_blueprint
        from driftloop.datasets import load_dataset
        from driftloop.training.candidates import train_candidates
        from driftloop.training.splits import split_frame
    except ImportError as exc:
        raise SectionSkipped(f"driftloop training code not importable: {exc}") from exc
    blueprint = get_blueprint("sentiment")
    frame = load_dataset(SCALE_DATASET)
    sizes = [n for n in ctx.budget.train_rows if n <= len(frame)]
    task = ctx.progress.add_task("scale: training rows", total=len(sizes))
    seconds: dict[int, float] = {}
    for rows in sizes:
        sample = frame.sample(n=rows, random_state=0).reset_index(drop=True)
        splits = split_frame(sample, seed=42)
        # best of `repeats`: on a shared box the minimum is the least disturbed run
        repeats = 1 if ctx.budget.quick else 2
        runs = []
        for attempt in range(repeats):
            started = time.perf_counter()
            train_candidates(
                blueprint,
                splits.train,
                splits.val,
                seed=42,
                experiment="bench-scale",
                run_name=f"bench-scale-{rows}-{attempt}",
            )
            runs.append(time.perf_counter() - started)
        seconds[rows] = min(runs)
        ctx.progress.advance(task)
    smallest = sizes[0]
    for rows in sizes:
        ctx.add(
            "training time vs rows",
            seconds[rows],
            "s",
            baseline=f"{smallest}-row time scaled linearly",
            baseline_value=seconds[smallest] * rows / smallest,
            better="lower",
            rows=rows,
            train_rows=int(rows * 0.7),
            dataset=SCALE_DATASET,
            candidates=len(blueprint.candidates(42)),
            repeats=1 if ctx.budget.quick else 2,
            statistic="min",
        )
    return seconds


def save_plot(ctx: Context, fig, ax, filename: str, *, xlabel: str, ylabel: str, title: str):
    """Label, save as PNG in the results folder, and list it with the section."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = ctx.out / filename
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    ctx.results.artifact(ctx.section, path)


def plot(ctx: Context, latencies: dict | None, training: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if latencies:
        fig, ax = plt.subplots(figsize=(6, 4))
        for kind, colour in ((ON, "tab:blue"), (KSERVE, "tab:green")):
            batches = sorted(latencies[kind])
            ax.plot(
                batches,
                [latencies[kind][b] for b in batches],
                marker="o",
                color=colour,
                label=f"{kind} p50",
            )
            ax.plot(
                batches,
                [latencies[f"{kind} p99"][b] for b in batches],
                marker="x",
                color=colour,
                linestyle="--",
                label=f"{kind} p99",
            )
        ax.set_xscale("log", base=2)
        save_plot(
            ctx,
            fig,
            ax,
            "scale_latency_vs_batch.png",
            xlabel="instances per request",
            ylabel="latency (ms), REST v2, 1 connection",
            title="Serving latency vs batch size (sentiment)",
        )
    if training:
        fig, ax = plt.subplots(figsize=(6, 4))
        rows = sorted(training)
        ax.plot(rows, [training[r] for r in rows], marker="o", label="train_candidates")
        ax.plot(
            rows,
            [training[rows[0]] * r / rows[0] for r in rows],
            linestyle=":",
            label="linear from smallest",
        )
        save_plot(
            ctx,
            fig,
            ax,
            "scale_training_vs_rows.png",
            xlabel=f"rows sampled from {SCALE_DATASET} (70 % train)",
            ylabel="seconds",
            title="Training time vs rows (all sentiment candidates)",
        )


def run(ctx: Context) -> None:
    latencies = serving_vs_batch(ctx) if wrk_available() else None
    if latencies is None:
        ctx.note("wrk not installed: serving vs batch size skipped")
    training = training_vs_rows(ctx)
    plot(ctx, latencies, training)
