"""Benchmark of the policies: limiter accuracy, acquire and open-breaker cost, hedging.

Side by side in one run:
- limiter accuracy: grants achieved vs configured at 100/s and 1000/s over 10 s,
  for our TokenBucketRateLimiter and SlidingWindowRateLimiter, aiolimiter and
  pyrate-limiter (when installed);
- µs per call: limiter acquire() on the fast path, an open breaker failing
  fast — ours vs aiolimiter/pyrate-limiter and pybreaker/purgatory;
- hedging on a ChaosServer route where 5 % of responses take 1 s: p50/p99 with
  and without hedging and the extra upstream load.

Usage: python bench/policies_bench.py [--seconds 10] [--hedge-requests 1000]
Writes bench/RESULTS_policies.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


async def _drive(acquire: Callable[[], Awaitable[Any]], seconds: float, workers: int = 20) -> int:
    """Run `workers` tasks acquiring in a loop for `seconds`; count grants inside the window."""
    granted = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal granted
        while True:
            await acquire()
            if time.monotonic() >= stop:
                return
            granted += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return granted


def limiter_factories(rate: int) -> dict[str, Callable[[], Callable[[], Awaitable[Any]]]]:
    from httpx_resilience import SlidingWindowRateLimiter, TokenBucketRateLimiter

    # A bucket of 1 loses whatever the event loop's timer is late by; a small
    # bucket (1 % of a second's worth, at least 2) absorbs it. Both are shown.
    cap = max(2, rate // 100)
    out: dict[str, Callable[[], Callable[[], Awaitable[Any]]]] = {
        "httpx-resilience TokenBucket(rate, burst=1)": lambda: TokenBucketRateLimiter(rate, 1).acquire,
        f"httpx-resilience TokenBucket(rate, burst={cap})": lambda: TokenBucketRateLimiter(
            rate, cap
        ).acquire,
        "httpx-resilience SlidingWindow(rate, 1 s)": lambda: SlidingWindowRateLimiter(rate, 1.0).acquire,
    }
    try:
        from aiolimiter import AsyncLimiter

        def aio(capacity: int) -> Callable[[], Callable[[], Awaitable[Any]]]:
            def make() -> Callable[[], Awaitable[Any]]:
                return AsyncLimiter(capacity, capacity / rate).acquire

            return make

        out["aiolimiter AsyncLimiter(1, 1/rate)"] = aio(1)
        out[f"aiolimiter AsyncLimiter({cap}, {cap}/rate)"] = aio(cap)
    except ImportError:
        pass
    try:
        from pyrate_limiter import Duration, Limiter, Rate

        def pyrate() -> Callable[[], Awaitable[Any]]:
            lim = Limiter(Rate(rate, Duration.SECOND))

            async def acquire() -> None:
                await lim.try_acquire_async("bench", blocking=True)

            return acquire

        out["pyrate-limiter Limiter(Rate(rate, 1 s))"] = pyrate
    except ImportError:
        pass
    return out


async def accuracy(seconds: float) -> list[tuple[str, int, float]]:
    rows = []
    for rate in (100, 1000):
        for name, make in limiter_factories(rate).items():
            granted = await _drive(make(), seconds)
            achieved = granted / seconds
            rows.append((name, rate, achieved))
            print(f"accuracy {name:<45} {rate:>5}/s -> {achieved:8.1f}/s ({achieved / rate - 1:+.2%})", flush=True)
    return rows


async def _per_call(fn: Callable[[], Awaitable[Any]], n: int = 50_000) -> float:
    for _ in range(1000):
        await fn()
    t0 = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - t0) / n * 1e6


async def costs() -> list[tuple[str, float]]:
    from httpx_resilience import CircuitBreaker, CircuitBreakerOpenError, TokenBucketRateLimiter

    rows: list[tuple[str, float]] = []
    ours = TokenBucketRateLimiter(1e9, 1_000_000)
    rows.append(("acquire: httpx-resilience TokenBucket", await _per_call(ours.acquire)))
    try:
        from aiolimiter import AsyncLimiter

        aio = AsyncLimiter(1e9, 1)
        rows.append(("acquire: aiolimiter", await _per_call(aio.acquire)))
    except ImportError:
        pass
    try:
        from pyrate_limiter import Duration, Limiter, Rate

        lim = Limiter(Rate(10**9, Duration.SECOND))

        async def pyr() -> None:
            await lim.try_acquire_async("k")

        rows.append(("acquire: pyrate-limiter", await _per_call(pyr, 20_000)))
    except ImportError:
        pass

    async def noop() -> None:
        return None

    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=3600)
    breaker.force_open()

    async def ours_open() -> None:
        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to what is timed
            await breaker.call(noop)
        except CircuitBreakerOpenError:
            pass

    rows.append(("open breaker fail-fast: httpx-resilience call()", await _per_call(ours_open)))

    async def ours_acquire_open() -> None:
        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to what is timed
            breaker.acquire()
        except CircuitBreakerOpenError:
            pass

    rows.append(("open breaker fail-fast: httpx-resilience acquire()", await _per_call(ours_acquire_open)))
    try:
        import pybreaker

        pb = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
        pb.open()

        async def pyb() -> None:
            try:  # noqa: SIM105 - contextlib.suppress would add its own cost to what is timed
                pb.call(lambda: None)
            except pybreaker.CircuitBreakerError:
                pass

        rows.append(("open breaker fail-fast: pybreaker call()", await _per_call(pyb)))
    except ImportError:
        pass
    try:
        from purgatory import AsyncCircuitBreakerFactory
        from purgatory.domain.model import OpenedState

        factory = AsyncCircuitBreakerFactory(default_threshold=1, default_ttl=3600)

        async def boom() -> None:
            async with await factory.get_breaker("svc"):
                raise RuntimeError("down")

        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to what is timed
            await boom()
        except RuntimeError:
            pass

        async def purg() -> None:
            try:
                async with await factory.get_breaker("svc"):
                    pass
            except OpenedState:
                pass

        rows.append(("open breaker fail-fast: purgatory", await _per_call(purg, 20_000)))
    except ImportError:
        pass
    for name, us in rows:
        print(f"cost {name:<55} {us:6.2f} µs", flush=True)
    return rows


async def hedging(requests: int, concurrency: int = 10) -> dict[str, dict[str, float]]:
    from httpx_resilience import AsyncHTTPClient, ClientConfig, HedgingPolicy
    from httpx_resilience.testing import ChaosServer, FaultMix

    out: dict[str, dict[str, float]] = {}
    cfg = ClientConfig(timeout=5.0, retry_attempts=0)
    variants = {
        "no hedging": None,
        "HedgingPolicy(0.05)": HedgingPolicy(0.05),
        "HedgingPolicy('adaptive', p95)": HedgingPolicy("adaptive"),
        "HedgingPolicy('adaptive', p90)": HedgingPolicy("adaptive", percentile=0.9),
    }
    with ChaosServer() as server:
        for i, (name, policy) in enumerate(variants.items()):
            path = f"/tail-{i}"
            server.route(path, mix=FaultMix(slow=0.05, slow_latency=1.0, seed=11))
            latencies: list[float] = []
            sem = asyncio.Semaphore(concurrency)
            async with AsyncHTTPClient(server.url, config=cfg, hedging=policy) as client:

                async def one(
                    client: AsyncHTTPClient, path: str, sem: asyncio.Semaphore, out: list[float]
                ) -> None:
                    async with sem:
                        t0 = time.perf_counter()
                        await client.get(path)
                        out.append(time.perf_counter() - t0)

                await asyncio.gather(
                    *(one(client, path, sem, latencies) for _ in range(requests))
                )
            latencies.sort()
            upstream = server.count(path)
            out[name] = {
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": latencies[int(0.99 * len(latencies)) - 1] * 1000,
                "extra_load": upstream / requests - 1,
            }
            o = out[name]
            print(f"hedging {name:<32} p50 {o['p50_ms']:7.1f} ms p99 {o['p99_ms']:7.1f} ms extra {o['extra_load']:+.1%}", flush=True)
    return out


def write(acc: list[tuple[str, int, float]], cost: list[tuple[str, float]], hedge: dict[str, dict[str, float]], seconds: float, requests: int) -> None:
    lines = [
        "## Policies (`bench/policies_bench.py`)",
        "",
        f"### Limiter accuracy ({seconds:g} s, 20 tasks acquiring in a loop)",
        "",
        "| limiter | configured | achieved | error |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {r}/s | {a:.1f}/s | {a / r - 1:+.2%} |" for n, r, a in acc]
    lines += ["", "### Cost per call (µs, one event loop, no contention)", "", "| operation | µs |", "|---|---|"]
    lines += [f"| {n} | {us:.2f} |" for n, us in cost]
    base = hedge.get("no hedging")
    lines += [
        "",
        f"### Hedging: {requests} GETs, 10 in flight, 5 % of answers take 1 s (ChaosServer, seeded)",
        "",
        "| client | p50 | p99 | p99 vs no hedging | extra upstream load |",
        "|---|---|---|---|---|",
    ]
    for n, o in hedge.items():
        ratio = f"{base['p99_ms'] / o['p99_ms']:.1f}× lower" if base and n != "no hedging" else "—"
        lines.append(f"| {n} | {o['p50_ms']:.1f} ms | {o['p99_ms']:.1f} ms | {ratio} | {o['extra_load']:+.1%} |")
    (HERE / "RESULTS_policies.md").write_text("\n".join(lines) + "\n")


async def main_async(seconds: float, requests: int) -> None:
    acc = await accuracy(seconds)
    cost = await costs()
    hedge = await hedging(requests)
    write(acc, cost, hedge, seconds, requests)
    print((HERE / "RESULTS_policies.md").read_text())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--hedge-requests", type=int, default=1000)
    a = p.parse_args()
    asyncio.run(main_async(a.seconds, a.hedge_requests))


if __name__ == "__main__":
    main()
