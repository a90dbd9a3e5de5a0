"""Every candidate on one series' temporal backtest, as a table (or JSON):

    python -m driftloop.blueprints.forecast.bench [--data FILE.csv --date-column C
        --value-column C] [--max-days N] [--epochs N] [--json]

MAE, RMSE, MAPE (%) and MASE against persistence on the test days, the validation MASE
the gate ranks by, and what serves.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from driftloop.blueprints import get_blueprint
from driftloop.datasets.errors import DatasetError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forecast-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--date-column", default=None)
    parser.add_argument("--value-column", default=None)
    parser.add_argument("--max-days", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--test-days", type=int, default=250)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    blueprint = get_blueprint(
        "forecast", max_days=args.max_days, epochs=args.epochs,
        date_column=args.date_column, value_column=args.value_column,
    )  # fmt: skip
    started = time.monotonic()
    try:
        _, dataset, _ = blueprint.prepare(args.dataset, args.data)
        frame = blueprint.load(dataset, args.data)
        report = blueprint.backtest(
            frame, test_days=args.test_days,
            progress=lambda name: print(f"fitting {name} ...", file=sys.stderr, flush=True),
        )  # fmt: skip
    except (DatasetError, ValueError) as exc:
        print(f"forecast-bench: error: {exc}", file=sys.stderr)
        return 2
    result = report.as_dict() | {"seconds": round(time.monotonic() - started, 1)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{dataset}: test {report.split['test'][0]}..{report.split['test'][1]}")
    for column in ("candidate", "MAE", "RMSE", "MAPE %", "MASE", "DM p", "val MASE"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for name, scores in report.test.items():
        table.add_row(
            name, f"{scores['mae']:.4f}", f"{scores['rmse']:.4f}", f"{scores['mape']:.3f}",
            f"{scores['mase']:.4f}", f"{scores['dm_pvalue']:.3g}",
            f"{report.val[name]['mase']:.4f}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"served: {report.served} -- {report.reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
