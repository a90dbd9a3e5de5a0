"""The recsys blueprint: top-K recommendations with cold start by user segment.

Rows are implicit interactions (``datasets.interactions``: ``user``, ``item``,
``timestamp``, ``weight``, ``genres``). Candidates: MostPop, ItemKNN and EASE as
baselines and driftloop's ``SegmentedRecommender``; all are ranked by NDCG@k on
held-out later interactions (per-segment NDCG/Recall, MAP and coverage logged too).
Options: ``warm_min`` (history length from which a user is warm; 1 .. warm_min-1 is
semi), ``k`` (metric cutoff and default list length), ``max_k`` (largest k a request
may ask), ``half_life_days`` (anonymous popularity decay), ``max_items`` (items the
collaborative matrices cover), and the ``user_column`` /
``item_column`` / ``time_column`` / ``weight_column`` of a ``--data`` file and ``items``,
an item catalogue file whose category/genres column becomes the items' content.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd

from driftloop.blueprints.base import FEEDBACK_SOURCE, Blueprint, Metric, ParamRange
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.recsys.codec import ClickFeedback, RecsysCodec
from driftloop.blueprints.recsys.drift import RecsysFeaturizer
from driftloop.blueprints.recsys.metrics import evaluate
from driftloop.blueprints.recsys.models import (
    ALS,
    DEFAULT_HALF_LIFE_DAYS,
    EASE,
    ItemKNN,
    MostPopular,
    SegmentedRecommender,
)
from driftloop.blueprints.recsys.segments import DEFAULT_WARM_MIN
from driftloop.datasets.errors import DatasetValidationError

REQUIRED = ("user", "item", "timestamp")


class RecsysBlueprint(Blueprint):
    name: ClassVar[str] = "recsys"
    task = "recommendation"
    default_dataset: ClassVar[str] = "movielens"

    @property
    def k(self) -> int:
        return int(self.options.get("k", 10))

    @property
    def warm_min(self) -> int:
        return int(self.options.get("warm_min", DEFAULT_WARM_MIN))

    @property
    def default_metric(self) -> Metric:
        return Metric(f"ndcg_at_{self.k}", greater_is_better=True, floor=None)

    # --- data ----------------------------------------------------------------------
    @property
    def target_column(self) -> None:
        return None  # the held-out interactions themselves are the truth

    def load(
        self, dataset: str | None, source: str | None, label_mapping: str | None = None
    ) -> pd.DataFrame:
        from driftloop.datasets.interactions import load_interactions

        columns = {
            key: self.options.get(key)
            for key in ("user_column", "item_column", "time_column", "weight_column")
        }
        return load_interactions(dataset, source, items=self.options.get("items"), **columns)

    @property
    def time_column(self) -> str:
        return "timestamp"

    def validate(self, frame: pd.DataFrame, what: str = "dataset") -> dict:
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise DatasetValidationError(f"{what}: missing column(s) {', '.join(missing)}")
        if frame.empty:
            raise DatasetValidationError(f"{what} has no interactions")
        empty = {c: int(frame[c].isna().sum()) for c in REQUIRED if frame[c].isna().any()}
        if empty:
            raise DatasetValidationError(
                f"{what}: empty cells in " + ", ".join(f"{c} ({n} rows)" for c, n in empty.items()),
                {c: f"{n} rows empty" for c, n in empty.items()},
            )
        return {
            "rows": len(frame),
            "users": int(frame["user"].nunique()),
            "items": int(frame["item"].nunique()),
        }

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=[self.id_column], errors="ignore")

    def targets(self, frame: pd.DataFrame) -> None:
        return None

    def rows_from_feedback(self, inputs: Sequence[Any], truths: Sequence[Any]) -> pd.DataFrame:
        """One interaction per clicked item (a user's item once, however many lists it
        was clicked in: a list repeats what the user clicked before), all stamped now:
        the newest behaviour, which the time split holds out whole as the retraining's
        test period (ties join the later split), so champion and challenger are judged on
        clicks neither trained on. ``FEEDBACK_SOURCE`` names the click list."""
        rows, now, seen = [], time.time(), set()
        for index, (summary, clicks) in enumerate(zip(inputs, truths, strict=True)):
            user = str(summary["user_id"])
            for item in map(str, clicks or []):
                if (user, item) in seen:
                    continue
                seen.add((user, item))
                rows.append(
                    {
                        "user": user,
                        "item": item,
                        "timestamp": now,
                        "weight": 1.0,
                        "genres": "",
                        FEEDBACK_SOURCE: index,
                    }  # fmt: skip
                )
        columns = ["user", "item", "timestamp", "weight", "genres", FEEDBACK_SOURCE]
        return pd.DataFrame(rows, columns=columns)

    # --- trainer -------------------------------------------------------------------
    def candidates(self, seed: int) -> dict[str, Any]:
        warm_min = self.warm_min
        half_life = float(self.options.get("half_life_days", DEFAULT_HALF_LIFE_DAYS))
        # the item-item matrices are dense over this many most popular items
        max_items = int(self.options.get("max_items", 3000))
        return {
            "mostpop": MostPopular(warm_min=warm_min),
            "itemknn": ItemKNN(warm_min=warm_min, max_items=max_items),
            "ease": EASE(warm_min=warm_min, max_items=max_items),
            "als": ALS(warm_min=warm_min, random_state=seed),
            "driftloop": SegmentedRecommender(
                warm_min=warm_min,
                max_items=max_items,
                half_life_days=half_life,
                k=self.k,
                random_state=seed,
            ),
        }

    def tuning_space(self, candidate: str) -> dict:
        if candidate == "driftloop":
            return {
                "cf_weight": ParamRange(0.5, 1.0),
                "neighbours": ParamRange(20, 300, log=True, integer=True),
                "half_life_days": ParamRange(3.0, 365.0, log=True),
            }
        if candidate == "ease":
            return {"l2": ParamRange(10.0, 2000.0, log=True)}
        return {}

    def score(self, model: Any, frame: pd.DataFrame) -> dict[str, float]:
        return evaluate(model, frame, k=self.k)

    def input_example(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """A training user and an unknown one with a one-item session: every declared input
        is given (a generic OIP client sends each), and equal-width sessions make a
        [2, 1] ``recent_items`` tensor."""
        known = frame is not None and len(frame)
        user = str(frame["user"].iloc[0]) if known else "unknown"
        item = str(frame["item"].iloc[-1]) if known else "unknown-item"
        return pd.DataFrame(
            {"user_id": [user, "unknown-user"], "recent_items": [[item], [item]],
             "k": [self.k, self.k]}
        )  # fmt: skip

    # --- serving, drift, feedback --------------------------------------------------
    def codec(self, model: Any, limits: Limits | None = None) -> RecsysCodec:
        if not hasattr(model, "recommend"):
            raise TypeError("a recsys model needs recommend(users, recent, k)")
        return RecsysCodec(
            model, limits or Limits(), default_k=self.k, max_k=int(self.options.get("max_k", 100))
        )

    def drift_featurizer(self, model: Any, reference: pd.DataFrame) -> RecsysFeaturizer:
        return RecsysFeaturizer(model)

    @property
    def feedback(self) -> ClickFeedback:
        return ClickFeedback()
