"""Start driftloop's predictor for the serving benchmark, with logging+store on or off.

"on" is the product as shipped: every answered prediction goes to the
prediction store (SQLite under DRIFTLOOP_HOME) and to the payload logger
(CloudEvents to DRIFTLOOP_LOGGER_URL). "off" is the same server with neither:
no logger URL and ``DRIFTLOOP_PREDICTION_STORE=off``, the supported switches.
Everything else (validation, request ids, low-confidence flags, metrics,
reload) stays on. ``--no-store`` / ``--no-logger`` switch off one of the two,
to tell their costs apart.

    python -m bench.driftloop_server --model NAME --http-port P --grpc-port Q [--off]
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument(
        "--off", action="store_true", help="no payload logging, no prediction store"
    )
    parser.add_argument("--no-store", action="store_true", help="no prediction store")
    parser.add_argument("--no-logger", action="store_true", help="no payload logging")
    parser.add_argument(
        "--workers", type=int, default=1, help="REST worker processes (KServe's --workers)"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval seconds (diagnosis of GIL hand-offs)",
    )
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)

    if args.off or args.no_logger:
        os.environ.pop("DRIFTLOOP_LOGGER_URL", None)
    if args.off or args.no_store:
        os.environ["DRIFTLOOP_PREDICTION_STORE"] = "off"
    from driftloop.serving.server import serve
    from driftloop.settings import Settings

    serve(
        args.model,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        settings=Settings(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
