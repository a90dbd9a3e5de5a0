"""The tabular demo's traffic: any table, then a unit change in its most telling column.

v1 trains on part of the table; in-domain traffic replays held-out rows; then
an upstream source starts sending the most informative numeric column in
another unit (x 0.001, grams becoming kilograms), which the monitor sees as a
column shift and which breaks v1's answers. The rows' ground truth does not
change, so the feedback teaches the retraining the new unit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.demo.sources import DemoData, DemoPlan, TrafficSource
from driftloop.demo.traffic import Example

UNIT_CHANGE = 0.001
# shares of the shuffled table: v1's rows, rows labelled since, in-domain traffic; the
# rest is the shifted traffic. A table is small, so the retraining reads v1's rows too
# (a challenger trained on fewer rows than the champion lost the gate on diabetes even
# with the shift's feedback); the gate still judges the champion only on rows it never
# trained on (same id-hash split).
SHARES = (0.45, 0.25, 0.10)


def most_informative_numeric(features: pd.DataFrame, target: pd.Series, classifier: bool) -> str:
    """The numeric column that tells most about the target (mutual information)."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    numeric = features.select_dtypes("number")
    numeric = numeric.loc[:, numeric.nunique() > 1]
    if numeric.empty:
        raise ValueError("the table has no numeric feature column to shift")
    rows = numeric.notna().all(axis=1) & target.notna()
    score = mutual_info_classif if classifier else mutual_info_regression
    information = score(numeric[rows], target[rows], random_state=0)
    return str(numeric.columns[int(np.argmax(information))])


def _examples(frame: pd.DataFrame, target: str, classifier: bool) -> list[Example]:
    rows = json.loads(frame.drop(columns=["id", target]).to_json(orient="records"))
    truths = frame[target].astype(str) if classifier else frame[target].astype(float)
    return [Example(row, truth) for row, truth in zip(rows, truths.tolist(), strict=True)]


class TabularTraffic(TrafficSource):
    def __init__(
        self,
        dataset: str | None = "penguins",
        data: str | None = None,
        target: str | None = None,
        shift_column: str | None = None,
        model: str | None = None,
    ) -> None:
        options = {"target": target} if target else {}
        blueprint, self.dataset, _why = get_blueprint(BlueprintSpec("tabular", options)).prepare(
            None if data else dataset, data
        )
        self.blueprint = blueprint
        self.data = data
        self.shift_column = shift_column
        self.model = model or f"tabular-{Path(data).stem if data else self.dataset}"

    def plan(self, quick: bool) -> DemoPlan:
        return DemoPlan(
            blueprint=self.blueprint.spec.to_text(),
            dataset=self.dataset,
            monitor_window=50 if quick else 100,
        )

    def prepare(self, directory: Path, quick: bool, seed: int) -> DemoData:
        directory.mkdir(parents=True, exist_ok=True)
        blueprint = self.blueprint
        target = blueprint.target_column
        frame = blueprint.load(None if self.data else self.dataset, self.data)
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        bounds = [0, *np.cumsum([int(len(frame) * share) for share in SHARES]), len(frame)]
        training, retraining, held_out, later = (
            frame.iloc[start:end] for start, end in zip(bounds, bounds[1:], strict=False)
        )
        column = self.shift_column or most_informative_numeric(
            blueprint.features(frame), frame[target], blueprint.classifier
        )
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(f"--shift-column {column!r} is not a numeric column of the table")
        shifted = later.assign(**{column: later[column] * UNIT_CHANGE})
        train_path = directory / "rows-v1.csv"
        retrain_path = directory / "rows-since-v1.csv"
        training.to_csv(train_path, index=False)
        pd.concat([training, retraining]).to_csv(retrain_path, index=False)
        return DemoData(
            train_source=train_path,
            retrain_source=retrain_path,
            train_rows=len(training),
            retrain_rows=len(training) + len(retraining),
            baseline=_examples(held_out, target, blueprint.classifier),
            shifted=_examples(shifted, target, blueprint.classifier),
            describe_data=(
                f"data: {len(frame)} rows of {self.data or self.dataset} (target {target!r}, "
                f"{blueprint.task}): {len(training)} for v1, {len(retraining)} more labelled "
                f"since (the retraining reads both), {len(held_out)} held out as live traffic, "
                f"{len(later)} for the shift"
            ),
            describe_shift=f"column {column!r} now arrives in another unit (x {UNIT_CHANGE})",
        )
