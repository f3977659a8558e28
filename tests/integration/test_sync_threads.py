"""Threads sharing one breaker, one limiter, one bulkhead through the sync transport.

``httpx.Client(transport=ResilientTransport(...))`` shared by many threads, over
real sockets (ChaosServer), the requests counted where they arrive:

- half-open: exactly one probe reaches the server out of 50 threads;
- a token bucket holds its rate within ±2 % from 8 threads (and from 8 asyncio
  tasks, the same limiter code), counted by arrival time at the server in a
  window after start-up;
- a bulkhead caps the requests in flight from threads, and refuses without
  sending when its queue is full;
- one breaker shared by sync and async callers: failures seen by one open it
  for the other; one bulkhead shared by threads and tasks: slots held by
  threads refuse a task.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from httpx_resilience import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    ResilientTransport,
    RetryPolicy,
    TokenBucketRateLimiter,
)
from httpx_resilience.testing import ChaosServer, FakeClock

ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def run_threads(n: int, target: Callable[[int], object]) -> list[object]:
    """``target(i)`` in ``n`` threads released together; each one's result or exception."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # the test counts them
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_half_open_admits_exactly_one_probe_from_50_threads(chaos_server: ChaosServer) -> None:
    """The breaker is open, its cooldown over: of 50 threads released together one request
    reaches the server, 49 are refused without sending; the probe's success closes it."""
    chaos_server.route("/probe", status=503)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10.0, clock=clock)
    transport = ResilientTransport(retry=ONE_ATTEMPT, circuit_breaker=breaker)
    with httpx.Client(transport=transport, base_url=chaos_server.url) as client:
        assert client.get("/probe").status_code == 503
        assert breaker.state is CircuitState.OPEN
        chaos_server.route("/probe", latency=0.5)  # the probe holds its slot while the others try
        clock.advance(11.0)
        results = run_threads(50, lambda _: client.get("/probe"))
    ok = [r for r in results if isinstance(r, httpx.Response) and r.status_code == 200]
    refused = [r for r in results if isinstance(r, CircuitBreakerOpenError)]
    assert len(ok) == 1 and len(refused) == 49
    assert chaos_server.count("/probe") == 2  # the first 503 and the one probe
    assert breaker.state is CircuitState.CLOSED


RATE = 100.0
BURST = 10  # a taker the loaded machine stalls up to 0.1 s loses no rate (the bucket holds it)
WINDOW = (0.5, 3.5)  # seconds after the first arrival: start-up (the burst) left out
RUN = 4.0


def assert_rate_within_2_percent(server: ChaosServer, path: str) -> None:
    """Arrivals at the server in the window, per second, within ±2 % of the limiter's rate."""
    stamps = sorted(r.at for r in server.requests(path))
    start = stamps[0]
    inside = [t for t in stamps if start + WINDOW[0] <= t < start + WINDOW[1]]
    rate = len(inside) / (WINDOW[1] - WINDOW[0])
    assert abs(rate / RATE - 1) <= 0.02, (rate, len(stamps))


def test_a_token_bucket_holds_its_rate_from_8_threads(chaos_server: ChaosServer) -> None:
    """8 threads sending as fast as they can through one limiter: the server sees its rate."""
    chaos_server.route("/paced")
    limiter = TokenBucketRateLimiter(rate=RATE, burst=BURST, max_wait=5.0)
    transport = ResilientTransport(rate_limiter=limiter)
    stop = threading.Event()
    with httpx.Client(transport=transport, base_url=chaos_server.url) as client:

        def sender(_: int) -> int:
            sent = 0
            while not stop.is_set():
                client.get("/paced")
                sent += 1
            return sent

        timer = threading.Timer(RUN, stop.set)
        timer.start()
        sent = run_threads(8, sender)
        timer.join()
    assert all(isinstance(s, int) and s > 0 for s in sent), sent  # every thread got its turn
    assert_rate_within_2_percent(chaos_server, "/paced")


async def test_the_same_limiter_holds_its_rate_from_8_tasks(chaos_server: ChaosServer) -> None:
    """The async path with the same settings, for comparison: 8 tasks, the same rate."""
    chaos_server.route("/paced-async")
    limiter = TokenBucketRateLimiter(rate=RATE, burst=BURST, max_wait=5.0)
    async with httpx.AsyncClient(
        transport=ResilientTransport(rate_limiter=limiter), base_url=chaos_server.url
    ) as client:
        end = time.monotonic() + RUN

        async def sender() -> None:
            while time.monotonic() < end:
                await client.get("/paced-async")

        await asyncio.gather(*(sender() for _ in range(8)))
    assert_rate_within_2_percent(chaos_server, "/paced-async")


def test_a_full_bulkhead_refuses_threads_without_sending(chaos_server: ChaosServer) -> None:
    """Bulkhead(2), no queue: of 5 threads released together 2 are sent, 3 refused unsent."""
    chaos_server.route("/bh", latency=0.5)
    transport = ResilientTransport(retry=ONE_ATTEMPT, bulkhead=Bulkhead(2))
    with httpx.Client(transport=transport, base_url=chaos_server.url) as client:
        results = run_threads(5, lambda _: client.get("/bh"))
    assert sum(isinstance(r, BulkheadFullError) for r in results) == 3
    assert chaos_server.count("/bh") == 2


def test_a_bulkhead_queue_keeps_two_in_flight(chaos_server: ChaosServer) -> None:
    """Bulkhead(2, max_queue=8): 8 threads all served, never more than 2 at the server at once
    (each answer takes 0.2 s, so the third arrival comes when the first is answered)."""
    latency = 0.2
    chaos_server.route("/q", latency=latency)
    transport = ResilientTransport(retry=ONE_ATTEMPT, bulkhead=Bulkhead(2, max_queue=8))
    with httpx.Client(transport=transport, base_url=chaos_server.url) as client:
        results = run_threads(8, lambda _: client.get("/q").status_code)
    assert results == [200] * 8
    stamps = sorted(r.at for r in chaos_server.requests("/q"))
    gaps = [later - earlier for earlier, later in zip(stamps[:-2], stamps[2:], strict=True)]
    assert min(gaps) / latency >= 0.9, gaps  # the i+2-th waits for the i-th to finish


async def test_one_breaker_shared_by_sync_and_async_callers(chaos_server: ChaosServer) -> None:
    """Two 503s seen by a sync client (in a thread) open the breaker its async sibling shares:
    the async request is refused and sends nothing; after the cooldown an async probe closes it
    for the sync client too."""
    chaos_server.route("/svc", status=503)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=30.0, clock=clock)
    sync_side = ResilientTransport(retry=ONE_ATTEMPT, circuit_breaker=breaker)
    async_side = ResilientTransport(retry=ONE_ATTEMPT, circuit_breaker=breaker)
    with httpx.Client(transport=sync_side, base_url=chaos_server.url) as sync_client:

        def two_failures() -> list[int]:
            return [sync_client.get("/svc").status_code for _ in range(2)]

        assert await asyncio.to_thread(two_failures) == [503, 503]
        async with httpx.AsyncClient(transport=async_side, base_url=chaos_server.url) as client:
            with pytest.raises(CircuitBreakerOpenError):
                await client.get("/svc")
            assert chaos_server.count("/svc") == 2
            chaos_server.route("/svc", status=200)
            clock.advance(31.0)
            assert (await client.get("/svc")).status_code == 200
        assert breaker.state is CircuitState.CLOSED
        assert (await asyncio.to_thread(sync_client.get, "/svc")).status_code == 200


class Arrivals(httpx.BaseTransport):
    """httpx's sync transport that sets :attr:`ready` once ``n`` requests have entered it
    (so they hold their bulkhead slots)."""

    def __init__(self, n: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.n = n
        self.ready = threading.Event()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.n -= 1
            if self.n <= 0:
                self.ready.set()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


async def test_one_bulkhead_shared_by_threads_and_tasks(chaos_server: ChaosServer) -> None:
    """Bulkhead(2), no queue: two slow requests from threads hold both slots; a task's request
    through another transport sharing the bulkhead is refused without sending, and gets a slot
    once the threads are done."""
    chaos_server.route("/slow", latency=0.5)
    chaos_server.route("/fast")
    bulkhead = Bulkhead(2)
    arrivals = Arrivals(2)
    sync_side = ResilientTransport(retry=ONE_ATTEMPT, bulkhead=bulkhead, sync_transport=arrivals)
    async_side = ResilientTransport(retry=ONE_ATTEMPT, bulkhead=bulkhead)
    with httpx.Client(transport=sync_side, base_url=chaos_server.url) as sync_client:
        async with httpx.AsyncClient(transport=async_side, base_url=chaos_server.url) as client:
            threads = asyncio.gather(*(asyncio.to_thread(sync_client.get, "/slow") for _ in range(2)))
            assert await asyncio.to_thread(arrivals.ready.wait, 10.0)  # both slots held
            with pytest.raises(BulkheadFullError):
                await client.get("/fast")
            assert chaos_server.count("/fast") == 0
            assert [r.status_code for r in await threads] == [200, 200]
            assert (await client.get("/fast")).status_code == 200
