"""The forecast demo's traffic: MSFT's calm 2007, then the 2008-09 crisis.

v1 learns next-day closes from a calm stretch of MSFT (July 2003 - 2006; quick: 2005 -
2006). In-domain traffic asks for the first half of 2007, day by day: each request is the
last ``window`` closes, naming the series and the day it forecasts; each day's realised
close then arrives as an observation (``POST /v1/feedback/observations``), which resolves
the prediction made for it. Then the traffic jumps to September 2008 - March 2009, when
MSFT's daily moves were three to four times larger: the monitor's return and rolling
volatility detectors see it, every answer's ``drift_warning`` is set, and the alert
launches a retraining on the whole series through the crisis.

What the gate does with the challenger is the forecast blueprint's honest gate: on MSFT
nothing beats persistence by the margin (the bench's figures), so the retrained
persistence ties its predecessor and the champion is kept; the loop closes on that
decision (``DemoPlan.expects_promotion``), with the crisis in the challenger's drift
reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from driftloop.blueprints import BlueprintSpec, get_blueprint
from driftloop.datasets.prices import CLOSE, DATE, shipped_series
from driftloop.demo.sources import DemoData, DemoPlan, TrafficSource
from driftloop.demo.traffic import Example

SERIES = "msft"
# (first, last) days: v1's training, in-domain traffic, the volatile regime
TRAIN = ("2003-07-01", "2006-12-31")
TRAIN_QUICK = ("2005-01-01", "2006-12-31")
CALM = ("2007-01-01", "2007-06-30")
VOLATILE = ("2008-09-01", "2009-03-31")
# fast candidates: a demo shows the loop, the bench shows the models (LSTM included)
CANDIDATES = ("persistence", "random_walk_drift", "lagged_returns_ridge")


def forecast_examples(series: pd.DataFrame, first: str, last: str, window: int) -> list[Example]:
    """One request per day in [first, last]: the ``window`` closes before it, the series'
    name and the day; its truth is that day's close, which arrives as an observation."""
    closes = series[CLOSE].to_numpy(dtype=float)
    dates = series[DATE].to_numpy()
    examples = []
    for index in range(window, len(series)):
        day = str(dates[index])
        if first <= day <= last:
            instance = {
                "last_prices": [float(c) for c in closes[index - window : index]],
                "series": SERIES,
                "date": day,
            }
            examples.append(
                Example(instance, float(closes[index]), {"series": SERIES, "date": day})
            )
    return examples


class ForecastTraffic(TrafficSource):
    def __init__(self, window: int = 60, model: str | None = None) -> None:
        self.window = int(window)
        self.model = model or f"forecast-{SERIES}"

    def spec(self, quick: bool) -> BlueprintSpec:
        days = 60 if quick else 120  # test and validation days of each training run
        return BlueprintSpec(
            "forecast",
            {"window": self.window, "max_days": 0, "test_days": days, "val_days": days},
        )

    def plan(self, quick: bool) -> DemoPlan:
        return DemoPlan(
            blueprint=self.spec(quick).to_text(),
            dataset="prices",
            monitor_window=30 if quick else 50,
            baseline_feedback=1.0,  # every day's close is observed
            shifted_feedback=1.0,
            expects_promotion=False,
            pipeline_arguments={
                "search": json.dumps({"candidates": list(CANDIDATES), "trials": 0})
            },
        )

    def prepare(self, directory: Path, quick: bool, seed: int) -> DemoData:
        directory.mkdir(parents=True, exist_ok=True)
        get_blueprint(self.spec(quick))  # options checked before any work
        series = shipped_series(SERIES)
        first, last = TRAIN_QUICK if quick else TRAIN
        training = series[series[DATE].between(first, last)]
        through_crisis = series[series[DATE].between(first, VOLATILE[1])]
        train_path = directory / "msft-v1.csv"
        retrain_path = directory / "msft-through-crisis.csv"
        training.to_csv(train_path, index=False)
        through_crisis.to_csv(retrain_path, index=False)
        calm = forecast_examples(series, *CALM, self.window)
        volatile = forecast_examples(series, *VOLATILE, self.window)
        if quick:
            calm, volatile = calm[-90:], volatile[:90]
        return DemoData(
            train_source=train_path,
            retrain_source=retrain_path,
            train_rows=len(training),
            retrain_rows=len(through_crisis),
            baseline=calm,
            shifted=volatile,
            describe_data=(
                f"data: MSFT daily closes (pmdarima); v1 trains on {first} .. {last} "
                f"({len(training)} days), in-domain traffic asks for {len(calm)} days of "
                f"{CALM[0][:4]}, the regime change for {len(volatile)} days of "
                f"{VOLATILE[0][:7]} .. {VOLATILE[1][:7]}; every close arrives as an observation"
            ),
            describe_shift=(
                "the traffic jumps to the 2008-09 crisis (daily moves 3-4x larger); the "
                "retraining reads the whole series through it"
            ),
        )
