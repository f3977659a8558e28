"""The ``httpx-resilience`` command: ``demo``, ``request``, ``chaos serve`` and ``bench``.

The parser and the commands need only the core; the live views and tables use
``rich`` from the ``cli`` extra, the bench's plots matplotlib (the ``plots``
extra), and each says how to install what is missing.
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
        "request",
        help="a resilient curl: one request through the pipeline, with its attempt timeline",
        description="Send a request through retries, deadline, limiter, breaker and auth; the "
        "body goes to stdout, the attempt timeline to stderr. Exit codes: 0 below 400, 1 a final "
        "status of 400 or more, 2 a usage error, 3 no response (connection, timeout, breaker).",
    )
    from .request import add_arguments

    add_arguments(req)

    chaos = sub.add_parser(
        "chaos",
        help="run a ChaosServer in the foreground (for your own tests), with live counters",
        description="Serve faults on loopback: routes from a TOML profile, or from each "
        "request's query string (?status=503,503,200, ?latency=0.5, ?hang=1, ...).",
    )
    chaos.add_argument("action", nargs="?", choices=("serve",), default="serve",
                       help="what to do (serve: the default)")
    chaos.add_argument("--port", type=int, help="port (default: the profile's, else a free one)")
    chaos.add_argument("--profile", metavar="FILE", help="routes and faults (TOML)")
    chaos.add_argument(
        "--duration", type=float, default=0.0, help="stop after N seconds (0 = until Ctrl-C)"
    )
    chaos.add_argument("--no-live", action="store_true", help="no live counters")
    bench = sub.add_parser(
        "bench",
        help="a quick side-by-side against plain httpx on this machine, with PNG plots",
        description="Plain httpx.AsyncClient, the same over ResilientTransport, and "
        "AsyncHTTPClient, against a minimal loopback server in its own process: requests/s "
        "and CPU per request, as ratios to plain httpx; PNG plots with matplotlib.",
    )
    bench.add_argument("-n", "--requests", type=int, default=2000, help="GETs per client and round")
    bench.add_argument("-c", "--concurrency", type=int, action="append", metavar="N",
                       help="requests in flight; repeat for several (default: 1 and 32)")
    bench.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    bench.add_argument("--plots", default=".", metavar="DIR", help="where the PNGs go")
    bench.add_argument("--no-plots", action="store_true", help="write no plots")
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
    if args.command == "bench":
        from .bench import run_bench

        return run_bench(
            requests=args.requests,
            levels=tuple(args.concurrency or (1, 32)),
            rounds=args.rounds,
            plots=None if args.no_plots else args.plots,
        )
    from .chaos import run_chaos

    return run_chaos(
        port=args.port, duration=args.duration, profile=args.profile, live=not args.no_live
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
