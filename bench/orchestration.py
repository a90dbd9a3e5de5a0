"""Pipelines: what kfp.local orchestration costs, the training pipeline by step, a cached re-run.

1. A no-op pipeline of N chained steps (``x + 1``) run through kfp.local
   ``SubprocessRunner(use_venv=False)`` vs calling the same Python functions
   directly; the per-step overhead is the slope between two chain lengths.
2. The same chain with ``local.init(enable_caching=True, cache_root=...)``:
   a cold run, then a re-run that hits the cache.
3. driftloop's training pipeline, wall time by step (a cold run with caching
   on: every task executes); each step is compared with the no-op step, i.e.
   how much of it is orchestration.
4. The same pipeline re-run on the warm cache.

Every run goes through ``pipelines.local_run.run_pipeline_locally``, the way
``driftloop train`` and the retraining trigger run pipelines, with its
``enable_caching``/``cache_root`` for the cached runs.
"""

# no "from __future__ import annotations": kfp reads the component signatures at runtime

import time
import warnings
from pathlib import Path

from bench.context import Context, require


def noop_chain(length: int):
    """A pipeline of ``length`` steps, each adding one to its input."""
    from kfp import dsl

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def add_one(x: int) -> int:
        return x + 1

    @dsl.pipeline(name=f"bench-noop-{length}")
    def chain(start: int = 0) -> int:
        task = add_one(x=start)
        for _ in range(length - 1):
            task = add_one(x=task.output)
        return task.output

    return chain, add_one


def run_timed(pipeline_func, arguments: dict, root: Path, *, caching: bool = False):
    """One run through ``run_pipeline_locally`` (outputs under ``root``); raises if it failed.

    Wall seconds are ``result.seconds``, per-task seconds ``result.timings``
    (from kfp.local's own log lines), the pipeline's return ``result.pipeline_outputs``.
    """
    from pipelines.local_run import run_pipeline_locally

    from driftloop.settings import Settings

    settings = Settings(pipeline_root=root / "outputs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_pipeline_locally(
            pipeline_func,
            arguments,
            settings,
            enable_caching=caching,
            cache_root=root / "cache" if caching else None,
        )
    if not result.succeeded:
        raise RuntimeError(
            f"{result.pipeline} failed in task {result.failed_task}: {result.error} "
            f"(log: {result.log_path})"
        )
    return result


def chain_output(result) -> int:
    return int(result.pipeline_outputs["Output"])


def direct_chain_seconds(add_one, length: int, repeats: int = 200) -> float:
    """Seconds per step when the step functions are called in-process."""
    func = add_one.python_func
    started = time.perf_counter()
    for _ in range(repeats):
        x = 0
        for _ in range(length):
            x = func(x=x)
    return (time.perf_counter() - started) / (repeats * length)


def measure_noop(ctx: Context, lengths: tuple[int, int]) -> float:
    short, long = lengths
    walls = {}
    for length in lengths:
        chain, add_one = noop_chain(length)
        result = run_timed(chain, {"start": 0}, ctx.work / f"kfp-noop-{length}")
        if chain_output(result) != length:
            raise RuntimeError(f"no-op chain of {length} returned {result.pipeline_outputs}")
        seconds = walls[length] = result.seconds
        direct = direct_chain_seconds(add_one, length)
        ctx.add(
            "no-op pipeline wall time",
            seconds,
            "s",
            baseline="same functions called directly",
            baseline_value=direct * length,
            better="lower",
            steps=length,
        )
        ctx.progress.advance(ctx.cache["pipelines_task"])
    per_step = (walls[long] - walls[short]) / (long - short)
    fixed = walls[short] - per_step * short
    _, add_one = noop_chain(1)
    ctx.add(
        "kfp.local overhead per step",
        per_step,
        "s",
        baseline="direct call per step",
        baseline_value=direct_chain_seconds(add_one, 1),
        better="lower",
        headline=True,
        method=f"slope between {short} and {long} steps",
    )
    ctx.add(
        "kfp.local fixed overhead per pipeline",
        fixed,
        "s",
        baseline="overhead per step",
        baseline_value=per_step,
        better="lower",
        method="intercept of the same line",
    )
    ctx.cache["noop_step_seconds"] = per_step
    return per_step


def measure_noop_cached(ctx: Context, length: int) -> None:
    chain, _ = noop_chain(length)
    root = ctx.work / "kfp-noop-cached"
    cold = run_timed(chain, {"start": 0}, root, caching=True)
    warm = run_timed(chain, {"start": 0}, root, caching=True)
    if chain_output(warm) != length:
        raise RuntimeError(f"cached no-op chain returned {warm.pipeline_outputs}")
    ctx.add(
        "no-op pipeline, cached re-run",
        warm.seconds,
        "s",
        baseline="cold run with caching on",
        baseline_value=cold.seconds,
        better="lower",
        steps=length,
    )
    ctx.progress.advance(ctx.cache["pipelines_task"])


def training_arguments(ctx: Context) -> dict:
    return {
        "blueprint": "sentiment",
        "model_name": "sentiment-pipeline",
        "dataset": "sentiment-offline",
        "experiment": "bench-pipelines",
        "seed": 42,
    }


def measure_training(ctx: Context, noop_step: float) -> None:
    """The training pipeline by step (a cold run with caching on), then its cached re-run.

    One cold run serves both purposes: with an empty cache every task executes,
    as in ``driftloop train``; only the cache directory is extra.
    """
    require("pipelines.training", "training pipeline")
    from pipelines.training import training_pipeline

    root = ctx.work / "kfp-training-cached"
    cold_run = run_timed(training_pipeline, training_arguments(ctx), root, caching=True)
    ctx.progress.advance(ctx.cache["pipelines_task"])
    warm_run = run_timed(training_pipeline, training_arguments(ctx), root, caching=True)
    ctx.progress.advance(ctx.cache["pipelines_task"])
    cold, cold_tasks = cold_run.seconds, cold_run.timings
    warm, warm_tasks = warm_run.seconds, warm_run.timings
    for task, seconds in cold_tasks.items():
        ctx.add(
            "training pipeline step",
            seconds,
            "s",
            baseline="kfp.local no-op step",
            baseline_value=noop_step,
            better="lower",
            step=task,
        )
    ctx.add(
        "training pipeline wall time",
        cold,
        "s",
        baseline="sum of its step times",
        baseline_value=sum(cold_tasks.values()),
        better="lower",
        headline=True,
        steps=len(cold_tasks),
    )
    ctx.add(
        "training pipeline, cached re-run",
        warm,
        "s",
        baseline="cold run with caching on",
        baseline_value=cold,
        better="lower",
        headline=True,
    )
    reran = sorted(task for task in warm_tasks if warm_tasks[task] > 0.5 * cold_tasks.get(task, 0))
    ctx.note(
        "driftloop's steps that read a data source or live feedback or write MLflow/the "
        "registry set caching off (pipelines/_platform.configure), so kfp.local re-executes "
        "them on a warm cache; validate and split are cached, but their input is the ingest "
        "step's new artifact (kfp.local keys on its URI), so on a re-run they miss too. "
        "The no-op chain shows what a cache hit costs. "
        f"Cached re-run: {len(warm_tasks)} tasks reported; steps that still did their work: "
        f"{', '.join(reran) or 'none'}"
    )


def run(ctx: Context) -> None:
    require("kfp.local", "kfp")
    quick = ctx.budget.quick
    lengths = (1, 4) if quick else (2, 10)
    ctx.cache["pipelines_task"] = ctx.progress.add_task(
        "pipelines", total=len(lengths) + 1 + (0 if quick else 2)
    )
    noop_step = measure_noop(ctx, lengths)
    measure_noop_cached(ctx, lengths[1])
    if quick:
        ctx.note(
            "quick run: the training pipeline (by step, and cached) runs in the full suite only"
        )
        return
    measure_training(ctx, noop_step)
