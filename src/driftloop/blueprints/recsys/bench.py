"""driftloop's recommender against its baselines on one temporal split, per segment.

``python -m driftloop.blueprints.recsys.bench [--test-share 0.2] [--warm-min 10] [--quick]``
prints NDCG@10, Recall@10 and MAP@10 per segment and overall, and catalogue coverage, for
every candidate of the recsys blueprint (MostPop, ItemKNN, EASE, ALS, driftloop), all
fitted on the same training window and asked the same given-N views of the held-out
interactions (``metrics.evaluation_views``), then checks the issue's targets. ``make
bench-recsys`` records the same table in bench/results.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from driftloop.blueprints.recsys.segments import ANONYMOUS, SEGMENTS, SEMI, WARM
from driftloop.datasets.interactions import temporal_split

BASELINES = ("mostpop", "itemknn", "ease", "als")


def benchmark(
    frame: pd.DataFrame, blueprint, *, test_share: float = 0.2, seed: int = 0
) -> pd.DataFrame:
    """One row per candidate: overall and per-segment metrics, fit seconds; ``attrs["notes"]``
    says what answered driftloop's warm users (re-ranker or blend) and why."""
    train, test = temporal_split(frame, test_share=test_share)
    rows, notes = [], []
    for name, model in blueprint.candidates(seed=seed).items():
        started = time.perf_counter()
        model.fit(blueprint.features(train))
        seconds = time.perf_counter() - started
        rows.append({"model": name, **blueprint.score(model, test), "fit_s": round(seconds, 2)})
        if hasattr(model, "warm_model_"):
            chosen = ", ".join(f"{k} {v:.4f}" for k, v in model.validation_.items() if "ndcg" in k)
            notes.append(f"{name} warm users: {model.warm_model_} chosen on validation ({chosen})")
    table = pd.DataFrame(rows).set_index("model")
    table.attrs["notes"] = notes
    return table


def target_checks(table: pd.DataFrame, k: int = 10) -> list[tuple[str, float, float, bool]]:
    """(what, driftloop's value, the bound, met) for each target of the recsys issue:
    warm NDCG@k >= 1.5 x MostPop and >= 0.95 x the best single baseline; semi >= 1.1 x
    MostPop; anonymous (popularity with recency) >= all-time popularity."""
    ndcg = f"ndcg_at_{k}"
    ours, mostpop = table.loc["driftloop"], table.loc["mostpop"]
    baselines = [b for b in BASELINES if b in table.index]
    best = max(baselines, key=lambda b: table.loc[b, f"{ndcg}_{WARM}"])
    bounds = [
        (f"{WARM} {ndcg} >= 1.5 x mostpop", WARM, 1.5 * mostpop[f"{ndcg}_{WARM}"]),
        (f"{WARM} {ndcg} >= 0.95 x {best}", WARM, 0.95 * table.loc[best, f"{ndcg}_{WARM}"]),
        (f"{SEMI} {ndcg} >= 1.1 x mostpop", SEMI, 1.1 * mostpop[f"{ndcg}_{SEMI}"]),
        (f"{ANONYMOUS} {ndcg} >= mostpop", ANONYMOUS, mostpop[f"{ndcg}_{ANONYMOUS}"]),
    ]
    checks = []
    for what, segment, bound in bounds:
        value = float(ours[f"{ndcg}_{segment}"])
        checks.append((what, value, float(bound), bool(value >= bound)))
    return checks


def report_columns(table: pd.DataFrame, k: int = 10) -> list[str]:
    columns = [f"ndcg_at_{k}", f"recall_at_{k}", f"map_at_{k}", f"coverage_at_{k}", "users"]
    for segment in SEGMENTS:
        columns += [f"{m}_at_{k}_{segment}" for m in ("ndcg", "recall", "map")]
        columns.append(f"users_{segment}")
    return [c for c in columns if c in table] + ["fit_s"]


def run(quick: bool = False, test_share: float = 0.2, warm_min: int | None = None):
    """(the table, the blueprint) on MovieLens; ``quick``: CF over the 1,000 most popular
    items instead of 3,000 (the same split and views)."""
    from driftloop.blueprints import get_blueprint

    blueprint = get_blueprint("recsys", warm_min=warm_min, max_items=1000 if quick else None)
    return benchmark(blueprint.load(None, None), blueprint, test_share=test_share), blueprint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--warm-min", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smaller CF matrices")
    args = parser.parse_args(argv)
    table, blueprint = run(args.quick, args.test_share, args.warm_min)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table[report_columns(table, blueprint.k)].T.round(4).to_string())
    for note in table.attrs.get("notes", ()):
        print(note)
    for what, value, bound, met in target_checks(table, blueprint.k):
        print(f"{'met' if met else 'MISSED'}: {what}: {value:.4f} vs {bound:.4f}")


if __name__ == "__main__":
    main()
