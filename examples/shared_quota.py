"""Many workers, one quota: three processes share a limiter and a breaker on Redis.

Run: python examples/shared_quota.py   (Redis at $REDIS_URL, else 127.0.0.1:6379)

Three worker processes stand for the workers of a multi-process server. Each
builds its own ``RedisBackend`` and policies at startup, as a worker would;
they share nothing but Redis:

1. the quota: each worker sends 10 requests under
   ``TokenBucketRateLimiter(rate=10, burst=1, backend=...)``. 30 requests at
   10/s in all take about 3 s; three local limiters would have let them
   through in about 1 s (3 × the quota);
2. the breaker: the first worker meets a failing upstream and opens
   ``CircuitBreaker(failure_threshold=2, backend=...)``; every worker,
   the two others included, is refused at once on its next call, and sends
   nothing. (Failures count as consecutive across all the workers: a success
   in any of them resets the count.)

Without a reachable Redis the example says so and exits cleanly.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from httpx_resilience import (
    AsyncHTTPClient,
    CircuitBreaker,
    CircuitBreakerOpenError,
    RedisBackend,
    RetryPolicy,
    TokenBucketRateLimiter,
)
from httpx_resilience.testing import ChaosServer

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
WORKERS = 3
REQUESTS_EACH = 10
RATE = 10  # requests per second for all the workers together


def redis_answers(url: str) -> bool:
    """Whether a Redis answers PING at `url` (a plain socket: quick, no client needed)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


async def worker(index: int, base_url: str, prefix: str, sync: Any, opened: Any) -> list[str]:
    """One worker: its own backend and policies, built once at startup.

    ``sync`` (a barrier of all the workers) and ``opened`` (an event) only
    stage the demonstration: everyone starts together, worker 0 opens the
    breaker once all are done with the quota, and the others look after that.
    """
    backend = RedisBackend(REDIS_URL, prefix=prefix)
    limiter = TokenBucketRateLimiter(rate=RATE, burst=1, backend=backend)
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30, name="upstream", backend=backend)
    outcomes: list[str] = []
    async with AsyncHTTPClient(
        base_url, rate_limiter=limiter, circuit_breaker=breaker, retry=RetryPolicy(max_attempts=1)
    ) as client:
        await asyncio.to_thread(sync.wait, 30)  # every worker is up: start together
        # 1. The quota: ten requests from each worker, 10/s for all of them (about 3 s).
        for i in range(REQUESTS_EACH):
            await client.get(f"/search?worker={index}&i={i}")
        await asyncio.to_thread(sync.wait, 30)  # every worker is done with the quota
        # 2. The breaker: worker 0 meets a failing upstream (two 503s in a row, counted
        #    across processes) and opens it for everyone; the others look afterwards.
        if index == 0:
            for _ in range(2):
                response = await client.get("/flaky?status=503")
                outcomes.append(str(response.status_code))
            opened.set()
        await asyncio.to_thread(opened.wait, 30)
        try:
            await client.get("/after")
            outcomes.append("sent")
        except CircuitBreakerOpenError:
            outcomes.append("refused")
    await backend.aclose()
    return outcomes


def run_worker(index: int, base_url: str, prefix: str, sync: Any, opened: Any, results: Any) -> None:
    """A worker process's entry point."""
    results.put((index, asyncio.run(worker(index, base_url, prefix, sync, opened))))


def main() -> int:
    if not redis_answers(REDIS_URL):
        print(f"No Redis at {REDIS_URL}: start redis-server or set REDIS_URL. Nothing to show.")
        return 0
    prefix = f"example-{os.getpid()}-{int(time.time())}"  # this run's own keys
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    sync, opened = ctx.Barrier(WORKERS), ctx.Event()
    with ChaosServer() as server:
        procs = [
            ctx.Process(target=run_worker, args=(i, server.url, prefix, sync, opened, results))
            for i in range(WORKERS)
        ]
        for proc in procs:
            proc.start()
        try:
            outcomes = dict(results.get(timeout=45) for _ in procs)
        finally:
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
        arrivals = sorted(r.at for r in server.requests("/search"))  # as the server saw them
        took = arrivals[-1] - arrivals[0]
        sent = server.count("/search")
        after = server.count("/after")

    total = WORKERS * REQUESTS_EACH
    print(f"{total} requests from {WORKERS} processes at {RATE}/s in all took {took:.1f} s")
    print(f"breaker opened by worker 0: {outcomes[0][:2]}; next call per worker: "
          f"{[outcomes[i][-1] for i in range(WORKERS)]}")  # fmt: skip
    assert sent == total, sent
    assert after == 0, after  # the calls after the breaker opened were never sent
    assert took >= (total - 1) / RATE * 0.9, took  # one quota, not three
    assert outcomes[0][:2] == ["503", "503"]
    assert all(outcomes[i][-1] == "refused" for i in range(WORKERS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
