"""Run driftloop's drift monitor for one model on a loopback port (the drift benchmark's target).

python -m bench.monitor_server --model NAME --port P
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from driftloop.monitor.server import serve_monitor
    from driftloop.settings import Settings

    serve_monitor(args.model, Settings(), host="127.0.0.1", port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
