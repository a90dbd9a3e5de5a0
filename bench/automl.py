"""AutoML: driftloop ``tabular`` vs FLAML vs default LightGBM, same budget, same splits.

Ten tables shipped by installed packages (``bench/automl_datasets.py``: 3
binary, 3 multiclass, 4 regression, at most 5,000 rows each), one seeded 75/25
outer split per table shared by every system, metrics by the AutoML
Benchmark's convention: ROC-AUC (binary), log-loss (multiclass), RMSE
(regression), on the outer test rows.

Every system gets the same wall-clock budget per table (full run: 60 s and
300 s; ``--quick``: 30 s); the fit is timed, and a system that fails or takes
more than ``OVERRUN`` × the budget is scored as the constant predictor (class
prior / training mean) and flagged. Default LightGBM ignores the budget (it is
fitted once per table and scored at every budget).

Figures per table and budget: driftloop's metric against default LightGBM's
and against FLAML's. Headline figures per budget: the share of tables where
driftloop wins or ties default LightGBM (tie: losses within ``TIE`` relative),
and driftloop's mean relative loss vs FLAML, (loss - FLAML's) / |FLAML's| with
losses 1 - AUC, log-loss, RMSE. The full per-table table goes to
``automl.md`` / ``automl.json`` next to results.md, the plot to
``automl_relative_loss.png``.

Some tables only (a diagnosis; the headline figures then cover those alone):
``python -m bench.automl --tables credit_data,digits [--quick] [--out DIR]``, or
``BENCH_AUTOML_TABLES=credit_data,digits`` in the environment of ``make bench-automl*``.
Some budgets only (the full run's two budgets take ~2 h on 2 cores; each can run on its
own): ``--budgets 60`` or ``BENCH_AUTOML_BUDGETS=60``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import traceback
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from bench.automl_datasets import DATASETS, BenchDataset, OuterSplit, outer_split
from bench.automl_systems import ConstantPredictor, DefaultLightGBM, DriftloopTabular, Flaml
from bench.context import Context, require
from driftloop.training.budget import fit_threads

FULL_BUDGETS = (60.0, 300.0)
QUICK_BUDGETS = (30.0,)
OVERRUN = 1.25  # a fit longer than this × budget is scored as the constant predictor
TIE = 0.01  # relative loss difference that counts as a tie
SEED = 0
WIN_TARGET = 0.80  # share of tables won or tied vs default LightGBM
FLAML_TARGET = 0.03  # mean relative loss vs FLAML
DRIFTLOOP, FLAML, LIGHTGBM = "driftloop", "flaml", "lightgbm"
TABLES_ENV = "BENCH_AUTOML_TABLES"  # comma-separated table names: run those alone
BUDGETS_ENV = "BENCH_AUTOML_BUDGETS"  # comma-separated seconds: run those budgets alone


@dataclass
class Score:
    system: str
    metric: str
    value: float  # the metric as AMLB reports it (ROC-AUC, log-loss, RMSE)
    loss: float  # lower is better: 1 - AUC, log-loss, RMSE
    fit_seconds: float  # wall clock, what the budget is judged on
    cpu_seconds: float  # this process's CPU time over the fit (all threads)
    status: str  # ok | failed | over budget
    info: dict = field(default_factory=dict)
    error: str = ""
    # the metric of the system's own predictions, budget or not (None: it failed)
    fitted_value: float | None = None


# --- metrics -------------------------------------------------------------------------
def aligned_proba(proba: np.ndarray, own: list[str], classes: list[str]) -> np.ndarray:
    """Probability columns reordered from a model's class order to ``classes``
    (a class the model never saw gets probability 0)."""
    out = np.zeros((proba.shape[0], len(classes)))
    where = {c: i for i, c in enumerate(own)}
    for j, c in enumerate(classes):
        if c in where:
            out[:, j] = proba[:, where[c]]
    return out


def metric_value(task: str, y_true: pd.Series, prediction: np.ndarray, classes) -> float:
    """ROC-AUC (binary: positive = the second sorted class), log-loss, or RMSE."""
    if task == "binary":
        return float(roc_auc_score(y_true.astype(str) == classes[1], prediction[:, 1]))
    if task == "multiclass":
        proba = np.clip(prediction, 1e-15, 1.0)
        proba = proba / proba.sum(axis=1, keepdims=True)
        return float(log_loss(y_true.astype(str), proba, labels=classes))
    error = y_true.to_numpy(dtype=float) - prediction
    return float(np.sqrt(np.mean(error**2)))


def loss_of(task: str, value: float) -> float:
    return 1.0 - value if task == "binary" else value


def relative_loss(loss: float, reference: float) -> float:
    """(loss - reference) / |reference|; 0 when both are 0."""
    if reference == 0:
        return 0.0 if loss == 0 else math.inf
    return (loss - reference) / abs(reference)


def predictions(predictor, split: OuterSplit) -> np.ndarray:
    if split.classes is None:
        return predictor.predict(split.X_test)
    return aligned_proba(predictor.predict_proba(split.X_test), predictor.classes_, split.classes)


def evaluate(system, name: str, split: OuterSplit, budget_s: float, seed: int = SEED) -> Score:
    """Fit ``system`` within ``budget_s`` and score it on the outer test rows; a failure
    or an overrun beyond ``OVERRUN`` × budget is scored as the constant predictor."""
    task = split.dataset.task
    status, error, info, fitted = "ok", "", {}, None
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        # the same thread rule for every system (see bench.automl_systems)
        with threadpool_limits(limits=fit_threads()):
            predictor = system.fit(split.X_train, split.y_train, task, budget_s, seed)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        info = dict(predictor.info)
        value = metric_value(task, split.y_test, predictions(predictor, split), split.classes)
        if not math.isfinite(value):
            raise ValueError(f"{split.dataset.metric} is {value}")
        fitted = value
        if seconds > OVERRUN * budget_s:
            status = "over budget"
    except Exception as exc:  # a crashing system is scored, not fatal
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc(limit=5)
    if status != "ok":
        constant = ConstantPredictor().fit(split.X_train, split.y_train, task, budget_s, seed)
        value = metric_value(task, split.y_test, predictions(constant, split), split.classes)
    return Score(
        name,
        split.dataset.metric,
        value,
        loss_of(task, value),
        round(seconds, 2),
        round(cpu, 2),
        status,
        info,
        error,
        fitted,
    )


# --- the comparison ----------------------------------------------------------------
@dataclass
class Row:
    dataset: str
    task: str
    metric: str
    rows: int
    budget_s: float
    scores: dict[str, Score]

    @property
    def win_or_tie_vs_lightgbm(self) -> bool:
        loss = self.scores[DRIFTLOOP].loss
        return relative_loss(loss, self.scores[LIGHTGBM].loss) <= TIE

    @property
    def relative_loss_vs_flaml(self) -> float:
        return relative_loss(self.scores[DRIFTLOOP].loss, self.scores[FLAML].loss)

    def to_dict(self) -> dict:
        return {
            **{k: v for k, v in asdict(self).items() if k != "scores"},
            "scores": {name: asdict(score) for name, score in self.scores.items()},
            "win_or_tie_vs_lightgbm": self.win_or_tie_vs_lightgbm,
            "relative_loss_vs_flaml": self.relative_loss_vs_flaml,
        }


def ignoring_overruns(rows: list[Row]) -> list[Row]:
    """``rows`` with over-budget fits scored on their own predictions (a diagnostic:
    what the table would say without the budget rule)."""

    def counted(score: Score) -> Score:
        if score.status != "over budget" or score.fitted_value is None:
            return score
        task = "binary" if score.metric == "roc_auc" else "other"
        return replace(score, value=score.fitted_value, loss=loss_of(task, score.fitted_value))

    return [
        replace(row, scores={name: counted(score) for name, score in row.scores.items()})
        for row in rows
    ]


def summary(rows: list[Row]) -> dict[str, float]:
    wins = [row.win_or_tie_vs_lightgbm for row in rows]
    flaml_wins = [
        relative_loss(row.scores[FLAML].loss, row.scores[LIGHTGBM].loss) <= TIE for row in rows
    ]
    return {
        "tables": len(rows),
        "win_or_tie_share": float(np.mean(wins)),
        "flaml_win_or_tie_share": float(np.mean(flaml_wins)),
        "mean_relative_loss_vs_flaml": float(np.mean([r.relative_loss_vs_flaml for r in rows])),
        "lightgbm_mean_relative_loss_vs_flaml": float(
            np.mean([relative_loss(r.scores[LIGHTGBM].loss, r.scores[FLAML].loss) for r in rows])
        ),
    }


def selected_datasets(text: str | None = None) -> list[BenchDataset]:
    """The tables named in ``text`` (comma-separated; None: ``$BENCH_AUTOML_TABLES``), in
    the registry's order; every table when none is named."""
    text = os.environ.get(TABLES_ENV, "") if text is None else text
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(DATASETS))
    if unknown:
        raise ValueError(
            f"--tables: unknown table(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}"
        )
    return [dataset for name, dataset in DATASETS.items() if not names or name in names]


def selected_budgets(quick: bool, text: str | None = None) -> tuple[float, ...]:
    """The budgets named in ``text`` (comma-separated seconds; None: ``$BENCH_AUTOML_BUDGETS``),
    else the quick or the full run's."""
    text = os.environ.get(BUDGETS_ENV, "") if text is None else text
    if not text.strip():
        return QUICK_BUDGETS if quick else FULL_BUDGETS
    try:
        budgets = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        budgets = ()
    if not budgets or any(budget <= 0 for budget in budgets):
        raise ValueError(f"--budgets: expected positive seconds separated by commas, got {text!r}")
    return budgets


def run(ctx: Context) -> None:
    datasets = selected_datasets()
    for module, what in (
        ("flaml", "FLAML"),
        ("lightgbm", "LightGBM"),
        ("driftloop.training.candidates", "driftloop training"),
    ):
        require(module, what)
    budgets = selected_budgets(ctx.budget.quick)
    systems = {
        DRIFTLOOP: DriftloopTabular(ctx.work / "automl-home"),
        FLAML: Flaml(),
        LIGHTGBM: DefaultLightGBM(),
    }
    for system in systems.values():
        system.prepare()  # imports and the sqlite store's migrations are no fit time
    task = ctx.progress.add_task("automl", total=len(datasets) * (1 + 2 * len(budgets)))
    rows: list[Row] = []
    for dataset in datasets:
        split = outer_split(dataset, SEED)
        ctx.progress.update(task, description=f"automl: {dataset.name} LightGBM")
        lightgbm = evaluate(systems[LIGHTGBM], LIGHTGBM, split, max(budgets))
        ctx.progress.advance(task)
        for budget in budgets:
            scores = {LIGHTGBM: lightgbm}
            for name in (DRIFTLOOP, FLAML):
                ctx.progress.update(task, description=f"automl: {dataset.name} {name} {budget:g} s")
                scores[name] = evaluate(systems[name], name, split, budget)
                ctx.progress.advance(task)
            row = Row(dataset.name, dataset.task, dataset.metric, split.rows_total, budget, scores)
            rows.append(row)
            ctx.log(_row_line(row))
    report(ctx, rows, budgets)


def _row_line(row: Row) -> str:
    s = row.scores
    flags = [f"{n} {sc.status}" for n, sc in s.items() if sc.status != "ok"]
    return (
        f"{row.dataset} ({row.metric}, {row.budget_s:g} s): driftloop {s[DRIFTLOOP].value:.4f} "
        f"({s[DRIFTLOOP].fit_seconds:.0f} s), FLAML {s[FLAML].value:.4f} "
        f"({s[FLAML].fit_seconds:.0f} s), LightGBM {s[LIGHTGBM].value:.4f}"
        + (f" -- flagged: {'; '.join(flags)}" if flags else "")
    )


# --- the report ----------------------------------------------------------------------
def report(ctx: Context, rows: list[Row], budgets: tuple[float, ...]) -> None:
    indicative = " (quick run, one short budget: indicative only)" if ctx.budget.quick else ""
    for row in rows:
        s = row.scores
        better = "lower" if row.metric != "roc_auc" else "higher"
        common = {
            "dataset": row.dataset,
            "task": row.task,
            "budget_s": row.budget_s,
            "rows": row.rows,
            "driftloop_best": s[DRIFTLOOP].info.get("best", ""),
            "driftloop_status": s[DRIFTLOOP].status,
        }
        ctx.add(
            f"{row.metric} vs default LightGBM",
            s[DRIFTLOOP].value,
            row.metric,
            baseline="LightGBM, default parameters",
            baseline_value=s[LIGHTGBM].value,
            better=better,
            win_or_tie=row.win_or_tie_vs_lightgbm,
            **common,
        )
        ctx.add(
            f"{row.metric} vs FLAML",
            s[DRIFTLOOP].value,
            row.metric,
            baseline=f"FLAML, same {row.budget_s:g} s budget",
            baseline_value=s[FLAML].value,
            better=better,
            relative_loss=round(row.relative_loss_vs_flaml, 4),
            flaml_status=s[FLAML].status,
            **common,
        )
    summaries = {}
    for budget in budgets:
        at = [row for row in rows if row.budget_s == budget]
        figures = summaries[budget] = summary(at)
        figures["ignoring_overruns"] = summary(ignoring_overruns(at))
        ctx.add(
            "tables won or tied vs default LightGBM",
            100 * figures["win_or_tie_share"],
            "%",
            baseline="FLAML's share, same run",
            baseline_value=100 * figures["flaml_win_or_tie_share"],
            better="higher",
            headline=True,
            budget_s=budget,
            tables=len(at),
            tie=f"losses within {TIE:.0%}",
            target=f">= {WIN_TARGET:.0%}",
        )
        ctx.add(
            "mean relative loss vs FLAML",
            100 * figures["mean_relative_loss_vs_flaml"],
            "%",
            baseline="FLAML (0 by definition; LightGBM's in params)",
            baseline_value=0.0,
            better="lower",
            headline=True,
            budget_s=budget,
            tables=len(at),
            lightgbm_pct=round(100 * figures["lightgbm_mean_relative_loss_vs_flaml"], 2),
            target=f"<= {FLAML_TARGET:.0%}",
        )
        wins_ok = figures["win_or_tie_share"] >= WIN_TARGET
        flaml_ok = figures["mean_relative_loss_vs_flaml"] <= FLAML_TARGET
        ctx.note(
            f"acceptance at {budget:g} s: won or tied vs default LightGBM on "
            f"{figures['win_or_tie_share']:.0%} of {len(at)} tables -> "
            f"{'PASS' if wins_ok else 'FAIL'} (target {WIN_TARGET:.0%}); mean relative loss vs "
            f"FLAML {figures['mean_relative_loss_vs_flaml']:+.1%} -> "
            f"{'PASS' if flaml_ok else 'FAIL'} (target <= {FLAML_TARGET:+.0%}){indicative}"
        )
        ctx.note(
            f"diagnostic at {budget:g} s, over-budget fits scored on their own predictions: "
            f"{summary_line(figures['ignoring_overruns'])}"
        )
    budget_notes = sorted({row.scores[DRIFTLOOP].info.get("budget", "") for row in rows} - {""})
    for text in budget_notes:
        ctx.note(f"driftloop budget: {text}")
    for row in rows:
        for score in row.scores.values():
            if score.status != "ok":
                ctx.note(
                    f"{row.dataset} at {row.budget_s:g} s: {score.system} {score.status} "
                    f"after {score.fit_seconds:.0f} s, scored as the constant predictor"
                    + (
                        ""
                        if score.fitted_value is None
                        else f" (its own predictions: {score.fitted_value:.4g})"
                    )
                    + (f" ({score.error})" if score.error else "")
                )
    write_table(ctx, rows, summaries, indicative)
    plot(ctx, rows, budgets)


def markdown_table(rows: list[Row]) -> list[str]:
    lines = [
        "| table | task | metric | budget s | driftloop | FLAML | LightGBM | driftloop best "
        "| fit s (dl / FLAML / LGBM) | vs LightGBM | rel. loss vs FLAML | flags |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | --- |",
    ]
    for row in rows:
        s = row.scores
        flags = "; ".join(_flag(sc) for sc in s.values() if sc.status != "ok")
        seconds = " / ".join(f"{s[n].fit_seconds:.0f}" for n in (DRIFTLOOP, FLAML, LIGHTGBM))
        lines.append(
            f"| {row.dataset} | {row.task} | {row.metric} | {row.budget_s:g} "
            f"| {s[DRIFTLOOP].value:.4f} | {s[FLAML].value:.4f} | {s[LIGHTGBM].value:.4f} "
            f"| {s[DRIFTLOOP].info.get('best', '')} | {seconds} "
            f"| {'win/tie' if row.win_or_tie_vs_lightgbm else 'loss'} "
            f"| {row.relative_loss_vs_flaml:+.1%} | {flags} |"
        )
    return lines


def summary_line(figures: dict) -> str:
    return (
        f"won or tied vs LightGBM on {figures['win_or_tie_share']:.0%} "
        f"(FLAML {figures['flaml_win_or_tie_share']:.0%}); mean relative loss vs FLAML "
        f"{figures['mean_relative_loss_vs_flaml']:+.1%} "
        f"(LightGBM {figures['lightgbm_mean_relative_loss_vs_flaml']:+.1%})"
    )


def _flag(score: Score) -> str:
    own = "" if score.fitted_value is None else f" (own predictions: {score.fitted_value:.4g})"
    return f"{score.system} {score.status}{own}"


def write_table(ctx: Context, rows: list[Row], summaries: dict, indicative: str) -> None:
    lines = [f"# AutoML: driftloop tabular vs FLAML vs default LightGBM{indicative}", ""]
    lines += markdown_table(rows)
    lines.append("")
    for budget, figures in summaries.items():
        lines.append(f"- {budget:g} s: {summary_line(figures)}")
        lines.append(
            f"- {budget:g} s, ignoring the budget rule (diagnostic): "
            f"{summary_line(figures['ignoring_overruns'])}"
        )
    (ctx.out / "automl.md").write_text("\n".join(lines) + "\n")
    document = {
        "quick": ctx.budget.quick,
        "seed": SEED,
        "overrun_factor": OVERRUN,
        "tie": TIE,
        "rows": [row.to_dict() for row in rows],
        "summaries": {str(budget): figures for budget, figures in summaries.items()},
    }
    (ctx.out / "automl.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    ctx.note("per-table results: automl.md and automl.json next to this file")


def plot(ctx: Context, rows: list[Row], budgets: tuple[float, ...]) -> None:
    """Relative loss vs FLAML per table (driftloop and default LightGBM), one panel per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(budgets), figsize=(6.5 * len(budgets), 4.5), squeeze=False)
    for ax, budget in zip(axes[0], budgets, strict=True):
        at = [row for row in rows if row.budget_s == budget]
        x = np.arange(len(at))
        for name, label, marker, colour in (
            (DRIFTLOOP, "driftloop tabular", "o", "tab:blue"),
            (LIGHTGBM, "LightGBM (default)", "s", "tab:green"),
        ):
            values = [100 * relative_loss(r.scores[name].loss, r.scores[FLAML].loss) for r in at]
            ax.scatter(x, values, marker=marker, color=colour, label=label, zorder=3)
        ax.axhline(0, color="tab:orange", label="FLAML", zorder=2)
        ax.axhline(100 * FLAML_TARGET, color="grey", linestyle="--", label="+3 % target")
        ax.set_yscale("symlog", linthresh=10)
        ax.set_xticks(x, [f"{r.dataset}\n({r.metric})" for r in at], rotation=45, ha="right")
        ax.set_ylabel("relative loss vs FLAML (%)")
        ax.set_title(f"budget {budget:g} s per table")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = ctx.out / "automl_relative_loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    ctx.results.artifact(ctx.section, path)


def main(argv: list[str] | None = None) -> int:
    """The AutoML section on the named tables and budgets only (``bench.run`` does the rest)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.automl", description="The AutoML benchmark on some tables."
    )
    parser.add_argument(
        "--tables", default="", help=f"comma-separated, of: {', '.join(DATASETS)} (default: all)"
    )
    parser.add_argument("--budgets", default="", help="comma-separated seconds (default: 60,300)")
    parser.add_argument("--quick", action="store_true", help="one 30 s budget")
    parser.add_argument("--out", default="bench/results/automl-tables", help="results folder")
    args = parser.parse_args(argv)
    try:
        selected_datasets(args.tables)
        selected_budgets(args.quick, args.budgets)
    except ValueError as exc:
        parser.error(str(exc))
    os.environ[TABLES_ENV] = args.tables
    os.environ[BUDGETS_ENV] = args.budgets
    from bench.run import main as run_main

    return run_main(
        ["--section", "automl", "--out", args.out] + (["--quick"] if args.quick else [])
    )


if __name__ == "__main__":
    raise SystemExit(main())
