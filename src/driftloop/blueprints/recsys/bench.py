"""driftloop's recommender against its baselines on one temporal split, per segment.

``python -m driftloop.blueprints.recsys.bench [--test-share 0.2] [--warm-min 10]``
prints NDCG@10 and Recall@10 per segment and overall for every candidate of the
recsys blueprint, all fitted on the same training window and scored on the same
held-out interactions.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from driftloop.blueprints.recsys.segments import SEGMENTS
from driftloop.datasets.interactions import temporal_split


def benchmark(frame: pd.DataFrame, blueprint, *, test_share: float = 0.2) -> pd.DataFrame:
    """One row per candidate: overall and per-segment metrics, fit seconds."""
    train, test = temporal_split(frame, test_share=test_share)
    rows = []
    for name, model in blueprint.candidates(seed=0).items():
        started = time.perf_counter()
        model.fit(blueprint.features(train))
        seconds = time.perf_counter() - started
        rows.append({"model": name, **blueprint.score(model, test), "fit_s": round(seconds, 2)})
    return pd.DataFrame(rows).set_index("model")


def main(argv: list[str] | None = None) -> None:
    from driftloop.blueprints import get_blueprint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--warm-min", type=int, default=None)
    args = parser.parse_args(argv)
    blueprint = get_blueprint("recsys", warm_min=args.warm_min)
    table = benchmark(blueprint.load(None, None), blueprint, test_share=args.test_share)
    k = blueprint.k
    columns = [f"ndcg_at_{k}", f"recall_at_{k}", f"map_at_{k}", f"coverage_at_{k}", "users"]
    for segment in SEGMENTS:
        columns += [f"ndcg_at_{k}_{segment}", f"recall_at_{k}_{segment}", f"users_{segment}"]
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table[[c for c in columns if c in table] + ["fit_s"]].T.round(4).to_string())


if __name__ == "__main__":
    main()
