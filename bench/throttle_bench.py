"""Adaptive throttling against a full outage: upstream load during it, and the time to recover.

One workload, one run, on a loopback ChaosServer, in real time (no fake
clock: the window is made short instead, so the run stays under a minute):

- a few callers per set-up, each starting a GET every ``--pace`` seconds
  (open loop: a slow answer does not slow the offered load);
- phases: healthy (``--healthy`` s), full outage (``--outage`` s: every
  answer is 503), healthy again (``--recovery`` s);
- every set-up has its own route on the same server and runs at the same
  time as the others, so they meet the same phases and the same machine.

The set-ups (the retry policy is the same for all: 3 attempts, short backoff):

- ``retry, no budget``: retries only (the load a plain retry loop puts on a
  dead upstream);
- ``retry + budget``: the default retry budget (20 % of requests plus 10/s);
- ``+ throttle``: the same plus ``AdaptiveThrottle(k=2, window=W)``
  (its defaults: at most 90 % refused, no refusal below 20 requests);
- ``+ throttle, exact``: the book's exact formula (``max_probability=1.0``,
  ``min_requests=0``).

Measured per set-up:

- **attempts sent upstream per logical request** started during the outage
  but its last ``--settle`` seconds (so that all their retries met it too),
  counted from each request's outcome (``ResilienceInfo.attempts_with_hedges``,
  or the error's attempt count): 1.0 is one attempt each, below 1 the client
  kept requests home;
- **refused locally**: logical requests the throttle refused during the outage;
- **time to recover**: from the end of the outage to the start of the first
  ``--bin``-second bin after which every bin has at least 90 % of its
  logical requests answered 200; and when the throttle's rejection
  probability first fell below 0.1 (polled every 20 ms).

Writes ``bench/RESULTS_throttle.md``.

Usage::

    python bench/throttle_bench.py [--window 2] [--healthy 2] [--outage 8] [--recovery 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import cpu_model  # noqa: E402  (bench/ is the script's folder)

from httpx_resilience import ClientConfig, ResilientTransport  # noqa: E402
from httpx_resilience.policies.throttle import AdaptiveThrottle, ThrottledError  # noqa: E402
from httpx_resilience.testing import ChaosServer  # noqa: E402


@dataclass
class Setup:
    name: str
    path: str
    transport: ResilientTransport
    # (start, answered 200, refused by the throttle, attempts sent upstream)
    samples: list[tuple[float, bool, bool, int]] = field(default_factory=list)
    p_below: float | None = None  # seconds after the outage until the throttle's p < 0.1


def setups(window: float) -> list[Setup]:
    config = ClientConfig(
        timeout=2.0, retry_attempts=2, retry_backoff_factor=0.02, retry_max_delay=0.1,
        retry_jitter="full",
    )

    def throttle(**kw: float) -> AdaptiveThrottle:
        return AdaptiveThrottle(  # type: ignore[arg-type]
            k=2.0, window=window, buckets=20, rng=random.Random(1), **kw
        )

    return [
        Setup("retry, no budget", "/none", ResilientTransport(config=config, retry_budget=False)),
        Setup("retry + budget", "/budget", ResilientTransport(config=config)),
        Setup("retry + budget + throttle", "/throttle",
              ResilientTransport(config=config, throttle=throttle())),
        Setup("retry + budget + throttle, exact formula", "/exact",
              ResilientTransport(config=config, throttle=throttle(max_probability=1.0,
                                                                  min_requests=0))),
    ]


async def caller(client: httpx.AsyncClient, url: str, setup: Setup, t0: float, end: float,
                 pace: float) -> None:
    """Start a GET every ``pace`` seconds until ``end``; record each outcome."""
    tasks: set[asyncio.Task[None]] = set()

    async def one(started: float) -> None:
        ok = refused = False
        try:
            r = await client.get(url)
            ok = r.status_code == 200
            sent = r.extensions["resilience"].attempts_with_hedges
        except ThrottledError as exc:
            refused = True
            sent = exc.attempt - 1  # the attempts before the refused one went out
        except httpx.HTTPError as exc:
            sent = getattr(exc, "attempts", 1)
        setup.samples.append((started - t0, ok, refused, sent))

    nxt = time.monotonic()
    while nxt < end:
        task = asyncio.create_task(one(nxt))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        nxt += pace
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    if tasks:
        await asyncio.gather(*tasks)


def recovery_time(samples: list[tuple[float, bool, bool, int]], start: float, end: float,
                  width: float) -> float | None:
    bins: list[tuple[int, int]] = []
    t = start
    while t < end:
        inside = [x[1] for x in samples if t <= x[0] < t + width]
        bins.append((sum(inside), len(inside)))
        t += width
    for i in range(len(bins)):
        if all(n == 0 or ok / n >= 0.9 for ok, n in bins[i:]):
            return i * width
    return None


async def run(args: argparse.Namespace) -> str:
    chosen = setups(args.window)
    with ChaosServer() as server:
        for s in chosen:
            server.route(s.path, status=200)
        clients = [httpx.AsyncClient(transport=s.transport) for s in chosen]
        t0 = time.monotonic()
        t_out, t_back = t0 + args.healthy, t0 + args.healthy + args.outage
        end = t_back + args.recovery

        async def phases() -> None:
            await asyncio.sleep(t_out - time.monotonic())
            for s in chosen:
                server.route(s.path, status=503)
            await asyncio.sleep(t_back - time.monotonic())
            for s in chosen:
                server.route(s.path, status=200)
            # How long each throttle takes to let the traffic back (p below 0.1).
            while (now := time.monotonic()) < end:
                for s in chosen:
                    throttle, host = s.transport.throttle, httpx.URL(server.url).netloc.decode()
                    if s.p_below is None and throttle is not None and (
                        throttle.probability(host) < 0.1
                    ):
                        s.p_below = now - t_back
                await asyncio.sleep(0.02)

        work = [phases()]
        for s, c in zip(chosen, clients, strict=True):
            url = server.url_for(s.path)
            work += [caller(c, url, s, t0, end, args.pace) for _ in range(args.callers)]
        await asyncio.gather(*work)
        for c in clients:
            await c.aclose()
    rows = []
    for s in chosen:
        # Started in the outage, early enough that every attempt met it (the last
        # --settle seconds are left out: their retries may land after it).
        out = [x for x in s.samples
               if args.healthy <= x[0] < args.healthy + args.outage - args.settle]
        refused = sum(1 for x in out if x[2])
        rec = recovery_time(s.samples, args.healthy + args.outage,
                            args.healthy + args.outage + args.recovery, args.bin)
        sent = sum(x[3] for x in out)
        rows.append(
            f"| {s.name} | {len(out)} | {sent} | **{sent / max(1, len(out)):.2f}** | "
            f"{refused} ({refused / max(1, len(out)):.0%}) | "
            + (f"{rec:.2f} s" if rec is not None else f"> {args.recovery:g} s") + " | "
            + ("–" if s.transport.throttle is None else
               f"{s.p_below:.2f} s" if s.p_below is not None else f"> {args.recovery:g} s")
            + " |"
        )
    rate = args.callers / args.pace
    return "\n".join([
        "# Adaptive throttling during a full outage",
        "",
        "Written by `bench/throttle_bench.py`: one run, real time (no fake clock; the throttle's "
        f"window is {args.window:g} s so that the run stays under a minute), loopback ChaosServer, "
        "every set-up at the same time on its own route.",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Workload per set-up: {args.callers} callers × one GET every {args.pace * 1000:g} ms "
        f"(open loop, {rate:g} requests/s offered); healthy {args.healthy:g} s → every answer "
        f"503 for {args.outage:g} s → healthy {args.recovery:g} s. Retry: 3 attempts, "
        "backoff 20 ms × 2ⁿ (≤ 100 ms), full jitter. Throttle: k=2, "
        f"window={args.window:g} s, 20 buckets.",
        f"- Logical requests: those started in the outage but its last {args.settle:g} s "
        "(their retries could land after it); their attempts are counted from each "
        "outcome (`ResilienceInfo.attempts_with_hedges`, or the error's attempt count).",
        "- Time to recover: from the end of the outage to the first "
        f"{args.bin * 1000:g} ms bin after which every bin has ≥ 90 % of its requests answered 200.",
        "",
        "| set-up | logical requests | their attempts sent upstream | upstream per logical | "
        "refused locally | time to recover | throttle's p < 0.1 after |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Reading: the retry budget bounds the *retries* (about 1 + its ratio + its floor "
        "per logical request, where retries alone send every attempt); the throttle also keeps "
        "*first attempts* home once the upstream rejects more than half of them, at the price of "
        "refusing most requests locally (a `fallback=` answers them). Its recovery is the window "
        "sliding: with the default cap (at most 90 % refused) the few attempts let through see "
        "the upstream back within about a window or two; the book's exact formula "
        "(`max_probability=1.0`) sends a little less during the outage and takes several "
        "windows to let the traffic back. The budget alone recovers at once (it never refused).",
        "",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--healthy", type=float, default=2.0)
    p.add_argument("--outage", type=float, default=8.0)
    p.add_argument("--recovery", type=float, default=10.0)
    p.add_argument("--callers", type=int, default=2)
    p.add_argument("--pace", type=float, default=0.04)
    p.add_argument("--bin", type=float, default=0.5)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--out", default=str(HERE / "RESULTS_throttle.md"))
    args = p.parse_args()
    text = asyncio.run(run(args))
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
