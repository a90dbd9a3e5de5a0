"""Forecast: every candidate of the forecast blueprint against persistence on two shipped
series (pmdarima's MSFT, arch's S&P 500) from one run.

Each series goes through the blueprint's own backtest (``blueprints/forecast/backtest.py``):
train | gap | val | gap | test in time order (gaps of one 60-day window), each candidate
fitted once on train, one-step rolling-origin forecasts over the last 250 trading days. For
every candidate: test MAE, RMSE, MAPE and MASE against persistence (persistence = 1), the
one-sided Diebold-Mariano p-value against persistence, and what the gate serves. Quick: the
recent 1000 days, 120 validation days, LSTM 2 epochs (the test period stays 250 days).
"""

from __future__ import annotations

import json

from bench.context import Context, require

SERIES = ("msft", "sp500")


def run(ctx: Context) -> None:
    require("driftloop.blueprints.forecast.bench", "the forecast blueprint")
    import torch

    from driftloop.blueprints.forecast.bench import backtest_series

    torch.set_num_threads(1)  # the LSTM fits as it does in a training step on a busy box
    reports = []
    for series in SERIES:
        ctx.log(f"{series}: backtesting every candidate")

        def progress(name: str, series: str = series) -> None:
            ctx.log(f"{series}: {name}")

        result = backtest_series(series, quick=ctx.budget.quick, progress=progress)
        reports.append(result)
        test = result["split"]["test"]
        for name, scores in result["test"].items():
            params = {"series": series, "candidate": name, "test_days": test[2],
                      "test_period": f"{test[0]}..{test[1]}"}  # fmt: skip
            ctx.add(f"{series} {name} test MASE", scores["mase"], "x persistence MAE",
                    baseline="persistence", baseline_value=1.0, better="lower",
                    headline=name == result["served"], **params)  # fmt: skip
            persistence = result["test"]["persistence"]
            for metric, unit in (("mae", "price"), ("rmse", "price"), ("mape", "%")):
                ctx.add(f"{series} {name} test {metric.upper()}", scores[metric], unit,
                        baseline="persistence", baseline_value=persistence[metric],
                        better="lower", **params)  # fmt: skip
        ctx.note(f"{series}: served {result['served']} -- {result['reason']} "
                 f"({result['seconds']} s; options {result['options']})")  # fmt: skip
    path = ctx.out / "forecast.json"
    path.write_text(json.dumps(reports, indent=2))
    ctx.results.artifact(ctx.section, path)
