"""Every candidate on each series' temporal backtest, as tables (or JSON):

    python -m driftloop.blueprints.forecast.bench [--dataset msft --dataset sp500 | --data
        FILE.csv --date-column C --value-column C] [--quick] [--max-days N] [--epochs N] [--json]

MAE, RMSE, MAPE (%) and MASE against persistence on the test days, the Diebold-Mariano
p-value against persistence, the validation MASE the gate ranks by, and what serves.
Default: both shipped series (MSFT, S&P 500) in one run. ``--quick``: the recent 1000
days, 120 validation days, LSTM 2 epochs (test stays 250 days).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from driftloop.blueprints import get_blueprint
from driftloop.datasets.errors import DatasetError
from driftloop.datasets.prices import SHIPPED

QUICK = {"max_days": 1000, "epochs": 2, "val_days": 120}
FULL = {"max_days": 2000, "epochs": 10, "val_days": 250}


def backtest_series(
    dataset: str | None,
    data: str | None = None,
    *,
    quick: bool = False,
    progress=None,
    **options: Any,
) -> dict:
    """One series' backtest report as a dict (``test``: every candidate's scores)."""
    sizes = (QUICK if quick else FULL) | {k: v for k, v in options.items() if v is not None}
    blueprint = get_blueprint("forecast", **sizes)
    started = time.monotonic()
    _, dataset, _ = blueprint.prepare(dataset, data)
    frame = blueprint.load(dataset, data)
    report = blueprint.backtest(frame, progress=progress)
    return report.as_dict() | {
        "series": data or dataset,
        "options": sizes,
        "seconds": round(time.monotonic() - started, 1),
    }


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    test = result["split"]["test"]
    table = Table(title=f"{result['series']}: test {test[0]}..{test[1]} ({test[2]} days)")
    for column in ("candidate", "MAE", "RMSE", "MAPE %", "MASE", "DM p", "val MASE"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for name, scores in result["test"].items():
        table.add_row(
            name, f"{scores['mae']:.4f}", f"{scores['rmse']:.4f}", f"{scores['mape']:.3f}",
            f"{scores['mase']:.4f}", f"{scores['dm_pvalue']:.3g}",
            f"{result['val'][name]['mase']:.4f}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"served: {result['served']} -- {result['reason']} ({result['seconds']} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forecast-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", action="append", help=f"repeatable: {', '.join(SHIPPED)}")
    parser.add_argument("--data", default=None)
    parser.add_argument("--date-column", default=None)
    parser.add_argument("--value-column", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--max-days", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--test-days", type=int, default=None)
    parser.add_argument("--val-days", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    options = {
        "max_days": args.max_days, "epochs": args.epochs, "test_days": args.test_days,
        "val_days": args.val_days, "date_column": args.date_column,
        "value_column": args.value_column,
    }  # fmt: skip
    runs = [(None, args.data)] if args.data else [(d, None) for d in args.dataset or SHIPPED]
    results = []
    for dataset, data in runs:
        try:
            result = backtest_series(
                dataset, data, quick=args.quick,
                progress=lambda name, s=data or dataset: print(
                    f"{s}: fitting {name} ...", file=sys.stderr, flush=True
                ),
                **options,
            )  # fmt: skip
        except (DatasetError, ValueError) as exc:
            print(f"forecast-bench: error: {exc}", file=sys.stderr)
            return 2
        results.append(result)
        if not args.json:
            print_table(result)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
