"""The pipeline's own cost per request, measured the way users meet it.

Each figure is "with the pipeline" minus "without it", in CPU µs per request,
over an in-memory transport (no sockets, so only our code differs):

- **direct**: ``ResilientTransport(memory).handle_async_request(request)`` minus
  ``memory.handle_async_request(request)``; the pipeline alone.
- **under httpx.AsyncClient**: ``httpx.AsyncClient(transport=ResilientTransport(mock))
  .get(url)`` minus ``httpx.AsyncClient(transport=mock).get(url)``, with
  ``httpx.MockTransport``: what a user of plain httpx (or of any httpx-based
  SDK) pays. httpx's client puts a per-phase ``timeout`` extension and its
  default headers on every request, and handles every header of the request
  and the response again after the transport (cookies, logging), which the
  direct call does not.
- **where it goes**: the same with one feature of the default set-up off at a
  time (the request-id header; the attempt timeout and deadline; the retry
  budget), and with all three off; and plain httpx sending the request-id
  header itself, which shows what one more header costs inside httpx.
- **AsyncHTTPClient**: our facade over the same mock transport, minus plain
  ``httpx.AsyncClient`` over it.

The ``ResilientTransport`` set-ups are the defaults (retry with its budget,
attempt timeout, total deadline, request id), plus one with every policy on
(breaker, token bucket). Each variant runs in blocks of ``--requests`` calls,
interleaved, each block after a full garbage collection; the report gives
the median (and min–max) of the paired differences after a warm-up.

``--src LABEL=DIR`` (repeatable) runs the same measurement against other
source trees of the package, each in its own process and interleaved round by
round, so a change is compared with the code before it in one run
(``git worktree add /tmp/before <rev>``, then
``--src before=/tmp/before/src --src after=src``).

Writes ``bench/RESULTS_overhead.md``.

Usage::

    python bench/overhead_bench.py [--rounds 5] [--requests 5000] [--src label=DIR ...]
    python bench/overhead_bench.py --one --requests N        (one process, JSON out)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import cpu_model  # noqa: E402  (bench/ is the script's folder)

BODY = b'{"ok":true,"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}'
URL = "http://memory.local/items"

VARIANTS = (
    "memory_direct",
    "resilient_direct",
    "resilient_all_direct",
    "httpx_mock",
    "httpx_resilient_mock",
    "httpx_resilient_all_mock",
    "httpx_resilient_no_rid_mock",
    "httpx_resilient_no_timeouts_mock",
    "httpx_resilient_no_budget_mock",
    "httpx_resilient_bare_mock",
    "httpx_header_mock",
    "client_mock",
)


async def measure(requests: int, blocks: int) -> dict[str, list[float]]:
    """µs per call for every variant, ``blocks`` blocks each, interleaved."""
    import httpx

    from httpx_resilience import (
        AsyncHTTPClient,
        CircuitBreaker,
        ClientConfig,
        ResilientTransport,
        TokenBucketRateLimiter,
    )

    headers = {"content-type": "application/json"}
    prebuilt = httpx.Response(200, content=BODY, headers=headers)

    class Memory(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return prebuilt

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=BODY, headers=headers)

    config = ClientConfig(timeout=10.0, total_timeout=30.0)

    def every_policy(inner: httpx.AsyncBaseTransport) -> ResilientTransport:
        return ResilientTransport(
            inner, config=config, circuit_breaker=CircuitBreaker(),
            rate_limiter=TokenBucketRateLimiter(rate=1e9, burst=1_000_000),
        )

    memory = Memory()
    url = httpx.URL(URL)
    direct = {
        "memory_direct": memory,
        "resilient_direct": ResilientTransport(memory, config=config),
        "resilient_all_direct": every_policy(memory),
    }
    def no_timeouts(t: ResilientTransport) -> ResilientTransport:
        t.timeout = t.total_timeout = None  # no attempt scope, no deadline
        return t

    mock = httpx.MockTransport(handler)
    no_rid = ClientConfig(timeout=10.0, total_timeout=30.0, request_id_header=None)
    transports: dict[str, httpx.AsyncBaseTransport] = {
        "httpx_mock": mock,
        "httpx_resilient_mock": ResilientTransport(mock, config=config),
        "httpx_resilient_all_mock": every_policy(mock),
        # Where the cost goes: the default set-up with one feature off at a time.
        "httpx_resilient_no_rid_mock": ResilientTransport(mock, config=no_rid),
        "httpx_resilient_no_timeouts_mock": no_timeouts(ResilientTransport(mock, config=config)),
        "httpx_resilient_no_budget_mock": ResilientTransport(
            mock, config=config, retry_budget=False
        ),
        "httpx_resilient_bare_mock": no_timeouts(
            ResilientTransport(mock, config=no_rid, retry_budget=False)
        ),
    }
    clients = {
        name: httpx.AsyncClient(transport=t, timeout=10.0) for name, t in transports.items()
    }
    # Plain httpx carrying the one header the pipeline adds, set by the user instead.
    clients["httpx_header_mock"] = httpx.AsyncClient(
        transport=mock, timeout=10.0,
        headers={"X-Request-Id": "5b0c3c2e-9d1e-4b8a-9f3a-2d6c1e0f4a7b"},
    )
    ours = AsyncHTTPClient(config=config, transport=mock)

    calls: dict[str, Callable[[], Awaitable[Any]]] = {}
    for name, transport in direct.items():

        async def send(t: httpx.AsyncBaseTransport = transport) -> Any:
            return await t.handle_async_request(httpx.Request("GET", url))

        calls[name] = send
    for name, client in clients.items():

        async def get(c: httpx.AsyncClient = client) -> Any:
            return await c.get(URL)

        calls[name] = get

    async def facade() -> Any:
        return await ours.get(URL)

    calls["client_mock"] = facade
    out: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for fn in calls.values():  # warm-up: caches, specialisation
        for _ in range(min(requests, 2000)):
            await fn()
    for block in range(blocks):
        order = VARIANTS if block % 2 == 0 else tuple(reversed(VARIANTS))
        for name in order:
            fn = calls[name]
            # Each block starts from a clean heap, so a full collection that
            # others' garbage made due does not land on this variant's block.
            gc.collect()
            t0 = time.process_time()
            for _ in range(requests):
                await fn()
            out[name].append((time.process_time() - t0) / requests * 1e6)
    for client in clients.values():
        await client.aclose()
    await ours.aclose()
    return out


def one(requests: int, blocks: int) -> None:
    """Run in this process and print the JSON result (the parent runs this per tree)."""
    print(json.dumps(asyncio.run(measure(requests, blocks))))


def run_tree(src: str, requests: int, blocks: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", "--requests", str(requests),
           "--blocks", str(blocks)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"run with {src} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def added(res: dict[str, list[float]], with_: str, without: str) -> list[float]:
    """Per block: the variant minus its baseline (paired by block, so drift cancels)."""
    return [a - b for a, b in zip(res[with_], res[without], strict=True)]


ROWS = (
    ("pipeline, direct call (default policies)", "resilient_direct", "memory_direct"),
    ("pipeline, direct call (every policy)", "resilient_all_direct", "memory_direct"),
    ("under httpx.AsyncClient + MockTransport (default policies)", "httpx_resilient_mock", "httpx_mock"),
    ("under httpx.AsyncClient + MockTransport (every policy)", "httpx_resilient_all_mock", "httpx_mock"),
    ("AsyncHTTPClient (default policies) vs plain httpx.AsyncClient", "client_mock", "httpx_mock"),
    ("… default, without the request-id header", "httpx_resilient_no_rid_mock", "httpx_mock"),
    ("… default, without attempt timeout and deadline", "httpx_resilient_no_timeouts_mock",
     "httpx_mock"),
    ("… default, without the retry budget", "httpx_resilient_no_budget_mock", "httpx_mock"),
    ("… none of the three (the loop alone)", "httpx_resilient_bare_mock", "httpx_mock"),
    ("plain httpx.AsyncClient sending an X-Request-Id header itself", "httpx_header_mock",
     "httpx_mock"),
)


def report(results: dict[str, dict[str, list[float]]], rounds: int, requests: int) -> str:
    lines = [
        "# The pipeline's cost per request, as users meet it",
        "",
        "Written by `bench/overhead_bench.py`: in-memory transports, no sockets; CPU µs per request "
        "added by the pipeline (the variant minus its baseline, paired block by block), median "
        f"(min–max) over {rounds} rounds × 3 blocks of {requests} requests, each tree in its "
        "own process, trees interleaved round by round.",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.platform()}",
        f"- Python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| added by the pipeline (µs/request) | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for label, with_, without in ROWS:
        cells = [med(added(res, with_, without)) for res in results.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| absolute (µs/request) | " + " | ".join(results) + " |",
              "|---|" + "---|" * len(results)]
    for name in VARIANTS:
        lines.append(f"| `{name}` | " + " | ".join(med(r[name]) for r in results.values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--one", action="store_true", help="measure in this process, print JSON")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    p.add_argument("--out", default=str(HERE / "RESULTS_overhead.md"))
    a = p.parse_args()
    if a.one:
        one(a.requests, a.blocks)
        return
    trees = dict(s.split("=", 1) for s in a.src) or {"this tree": str(HERE.parent / "src")}
    results: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    for r in range(a.rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
        for label, src in order:
            res = run_tree(src, a.requests, a.blocks)
            for name, values in res.items():
                results[label].setdefault(name, []).extend(values)
            summary = ", ".join(
                f"{row[1]} +{statistics.median(added(res, row[1], row[2])):.1f}" for row in ROWS
            )
            print(f"round {r + 1}/{a.rounds} {label}: {summary}", flush=True)
    text = report(results, a.rounds, a.requests)
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
