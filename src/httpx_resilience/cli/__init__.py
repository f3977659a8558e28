"""The ``httpx-resilience`` command: ``demo``, ``request`` and ``chaos``.

The parser needs only the standard library; the demo's progress bar and tables
use ``rich`` from the ``cli`` extra and say how to install it when it is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

INSTALL_HINT = "pip install 'httpx-resilience[cli]'"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``httpx-resilience`` command."""
    parser = argparse.ArgumentParser(
        prog="httpx-resilience",
        description="The resilience layer for Python HTTP: retries with budgets, deadlines, "
        "circuit breakers, rate limiters, bulkheads and hedging for httpx.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="plain httpx vs httpx-resilience against an embedded chaos server",
        description="Start the embedded ChaosServer with a scenario's faults, send the same "
        "requests through plain httpx and through httpx-resilience at the same time, compare, "
        "and draw the run in an HTML report.",
    )
    demo.add_argument("-n", "--requests", type=int, default=300, help="requests per client")
    demo.add_argument("-c", "--concurrency", type=int, default=20, help="requests in flight")
    demo.add_argument("--seed", type=int, default=7, help="seed of the fault mix (reproducible)")
    demo.add_argument(
        "--scenario",
        default="mixed",
        choices=("mixed", "flaky", "outage", "rate-limited", "slow-tail"),
        help="the faults: mixed (default), or one policy's case alone",
    )
    demo.add_argument(
        "--report",
        default="httpx-resilience-demo.html",
        metavar="FILE",
        help="write the HTML report here (default: %(default)s)",
    )
    demo.add_argument("--no-report", action="store_true", help="write no report")
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.add_argument("--no-progress", action="store_true", help="no live view")

    req = sub.add_parser(
        "request", help="send one request through the pipeline and show the outcome"
    )
    req.add_argument("method", help="HTTP method, e.g. GET")
    req.add_argument("url", help="absolute URL")
    req.add_argument("-H", "--header", action="append", default=[], help="'Name: value' header")
    req.add_argument("-d", "--data", help="request body (sent as is)")
    req.add_argument("--timeout", type=float, default=10.0, help="attempt timeout, seconds")
    req.add_argument("--retries", type=int, default=3, help="retries after the first attempt")
    req.add_argument("--idempotency-key", help="send an Idempotency-Key (makes POST retryable)")

    chaos = sub.add_parser("chaos", help="run a ChaosServer in the foreground")
    chaos.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    chaos.add_argument(
        "--duration", type=float, default=0.0, help="stop after N seconds (0 = until Ctrl-C)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(
            requests=args.requests,
            concurrency=args.concurrency,
            seed=args.seed,
            as_json=args.json,
            progress=not args.no_progress,
            scenario=args.scenario,
            report=None if args.no_report else args.report,
        )
    if args.command == "request":
        from .request import run_request

        return run_request(args)
    from .chaos import run_chaos

    return run_chaos(port=args.port, duration=args.duration)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
