"""Policies shared by threads, on real time: a limiter's rate holds across threads and tasks.

Eight threads (and, in the mixed test, asyncio tasks beside them) take from
one limiter as fast as it lets them, for about three seconds. The grants are
counted by timestamp in a window that starts after the start-up (the initial
burst) and ends before the threads stop, so the count measures the steady
rate alone; it is compared with the configured rate as a ratio (±2 %). The
token buckets hold a few tokens (``BURST``), so a taker that the loaded
machine stalls for a moment loses none of the rate.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from _redis import closed_port_url, fresh_prefix, redis_url

from httpx_resilience import (
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    MemoryBackend,
    RateLimiterTimeout,
    RedisBackend,
    SharedStateUnavailableError,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
)
from httpx_resilience.policies.limiter._base import RateLimiter
from httpx_resilience.testing import FakeClock, testing_mode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

RATE = 100.0
BURST = 5  # a taker the machine stalls for up to BURST / RATE seconds loses no token
RUN = 4.0  # seconds the takers run
WINDOW = (0.5, 3.5)  # seconds after the start over which grants are counted


def take_until(limiter: RateLimiter, stop_at: float, stamps: list[float], lock: threading.Lock,
               ) -> None:
    """A thread's loop: ``acquire_sync`` and stamp each grant until ``stop_at``."""
    while time.monotonic() < stop_at:
        limiter.acquire_sync()
        now = time.monotonic()
        with lock:
            stamps.append(now)


def assert_rate(stamps: list[float], start: float, rate: float, low: float = 0.98) -> None:
    """The grants stamped within ``WINDOW`` after ``start`` come at ``rate``: at most 2 %
    over it, and at least ``low`` of it (±2 % by default)."""
    lo, hi = start + WINDOW[0], start + WINDOW[1]
    counted = sum(lo <= t < hi for t in stamps)
    expected = rate * (WINDOW[1] - WINDOW[0])
    assert low <= counted / expected <= 1.02, (counted, expected)


@pytest.mark.parametrize("kind", ["token_bucket", "sliding_window"])
def test_eight_threads_share_one_rate(kind: str) -> None:
    limiter: RateLimiter
    if kind == "token_bucket":
        limiter = TokenBucketRateLimiter(RATE, BURST)
    else:
        limiter = SlidingWindowRateLimiter(10, 10 / RATE)
    stamps: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()
    threads = [
        threading.Thread(target=take_until, args=(limiter, start + RUN, stamps, lock))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    # The sliding window is exact over every window but cannot make up for a taker the
    # machine stalls (a slot it leaves idle is lost): only its upper bound is tight.
    assert_rate(stamps, start, RATE, low=0.98 if kind == "token_bucket" else 0.9)


def test_threads_and_tasks_share_one_rate_and_both_progress() -> None:
    limiter = TokenBucketRateLimiter(RATE, BURST)
    stamps: list[float] = []
    by: dict[str, int] = {"thread": 0, "task": 0}
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + RUN

    def thread_taker() -> None:
        while time.monotonic() < stop_at:
            limiter.acquire_sync()
            now = time.monotonic()
            with lock:
                stamps.append(now)
                by["thread"] += 1

    async def task_taker() -> None:
        while time.monotonic() < stop_at:
            await limiter.acquire()
            now = time.monotonic()
            with lock:
                stamps.append(now)
                by["task"] += 1

    async def tasks() -> None:
        await asyncio.gather(*(task_taker() for _ in range(4)))

    threads = [threading.Thread(target=thread_taker) for _ in range(4)]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join(timeout=20)
    assert_rate(stamps, start, RATE)
    # One FIFO queue: four threads and four tasks get about half each.
    assert 0.35 <= by["thread"] / (by["thread"] + by["task"]) <= 0.65, by


def test_threads_in_two_event_loops_and_plain_threads_share_one_limiter() -> None:
    limiter = TokenBucketRateLimiter(RATE, BURST)
    stamps: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + RUN

    async def task_taker() -> None:
        while time.monotonic() < stop_at:
            await limiter.acquire()
            now = time.monotonic()
            with lock:
                stamps.append(now)

    async def loop_main() -> None:
        await asyncio.gather(task_taker(), task_taker())

    loops = [threading.Thread(target=asyncio.run, args=(loop_main(),)) for _ in range(2)]
    plain = [
        threading.Thread(target=take_until, args=(limiter, stop_at, stamps, lock))
        for _ in range(2)
    ]
    for t in (*loops, *plain):
        t.start()
    for t in (*loops, *plain):
        t.join(timeout=20)
    assert_rate(stamps, start, RATE)


# -- a shared backend, from threads -------------------------------------------------


def test_threads_and_tasks_share_one_redis_rate() -> None:
    """Threads (the sync client) and tasks (the async client) take from one Redis limit."""
    url = redis_url()
    prefix = fresh_prefix()
    sync_side = TokenBucketRateLimiter(RATE, BURST, backend=RedisBackend(url, prefix=prefix),
                                       name="shared")
    async_backend = RedisBackend(url, prefix=prefix)
    async_side = TokenBucketRateLimiter(RATE, BURST, backend=async_backend, name="shared")
    stamps: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + RUN

    async def task_taker() -> None:
        while time.monotonic() < stop_at:
            await async_side.acquire()
            now = time.monotonic()
            with lock:
                stamps.append(now)

    async def tasks() -> None:
        await asyncio.gather(*(task_taker() for _ in range(3)))
        await async_backend.aclose()

    threads = [
        threading.Thread(target=take_until, args=(sync_side, stop_at, stamps, lock))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join(timeout=20)
    backend = sync_side.backend
    assert isinstance(backend, RedisBackend) and not backend.in_fallback
    backend.close()
    assert_rate(stamps, start, RATE)


def test_a_redis_sliding_window_from_threads_grants_exactly_its_limit() -> None:
    backend = RedisBackend(redis_url(), prefix=fresh_prefix())
    limiter = SlidingWindowRateLimiter(40, 60.0, backend=backend, max_wait=0)

    def take(_: int) -> int:
        granted = 0
        for _ in range(10):
            try:
                limiter.acquire_sync()
                granted += 1
            except RateLimiterTimeout:
                pass
        return granted

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(take, range(8)))
    backend.close()
    assert sum(results) == 40  # 80 asks, exactly the limit granted, across threads


def test_redis_down_sync_callers_apply_fail_mode() -> None:
    local = TokenBucketRateLimiter(
        1000.0, 5, backend=RedisBackend(closed_port_url(), timeout=0.2), name="down"
    )
    assert [local.acquire_sync() for _ in range(5)] == [0.0] * 5  # the local bucket
    assert local.backend is not None and local.backend.in_fallback
    assert local.tokens < 1
    opened = TokenBucketRateLimiter(
        0.001, 1, backend=RedisBackend(closed_port_url(), "p", "open", timeout=0.2), name="down"
    )
    assert [opened.acquire_sync() for _ in range(3)] == [0.0] * 3
    closed = TokenBucketRateLimiter(
        1.0, 1, backend=RedisBackend(closed_port_url(), "p", "closed", timeout=0.2), name="down"
    )
    with pytest.raises(SharedStateUnavailableError):
        closed.acquire_sync()


def test_a_backend_from_a_given_async_client_keeps_threads_local() -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url())
    limiter = TokenBucketRateLimiter(10.0, 3, backend=RedisBackend(client), name="given")
    assert [limiter.acquire_sync() for _ in range(3)] == [0.0] * 3
    assert limiter.tokens < 1  # granted from the local bucket: no sync client to ask Redis


def test_a_memory_backend_shares_one_limit_between_threads_of_two_limiters() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    a = SlidingWindowRateLimiter(50, 10.0, backend=backend, name="m", max_wait=0, clock=clock)
    b = SlidingWindowRateLimiter(50, 10.0, backend=backend, name="m", max_wait=0, clock=clock)

    def take(i: int) -> int:
        limiter = a if i % 2 else b
        granted = 0
        for _ in range(20):
            try:
                limiter.acquire_sync()
                granted += 1
            except RateLimiterTimeout:
                pass
        return granted

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(take, range(6)))
    assert sum(results) == 50


def test_a_shared_limiter_under_the_testing_switch_waits_nothing() -> None:
    backend = MemoryBackend()
    limiter = TokenBucketRateLimiter(0.01, 1, backend=backend, name="t")
    with testing_mode():
        assert [limiter.acquire_sync() for _ in range(3)] == [0.0] * 3


def test_a_shared_pause_beyond_max_wait_refuses_a_thread_at_once() -> None:
    limiter = TokenBucketRateLimiter(10.0, 1, backend=MemoryBackend(), name="p", max_wait=1.0)
    limiter.pause(30.0)
    with pytest.raises(RateLimiterTimeout):
        limiter.acquire_sync()


def test_a_pause_from_a_thread_reaches_redis() -> None:
    url, prefix = redis_url(), fresh_prefix()
    a = TokenBucketRateLimiter(10.0, 1, backend=RedisBackend(url, prefix=prefix), name="r")
    b = TokenBucketRateLimiter(10.0, 1, backend=RedisBackend(url, prefix=prefix), name="r")
    a.pause(20.0)  # from this thread: one round trip of the sync client
    with pytest.raises(TimeoutError, match="the deadline"):
        b.acquire_sync(timeout=0.5)  # the other "process" learns it from Redis
    for limiter in (a, b):
        backend = limiter.backend
        assert isinstance(backend, RedisBackend)
        backend.close()


# -- a breaker shared through Redis, from threads -----------------------------------


def redis_breakers(n: int, **kw: Any) -> list[CircuitBreaker]:
    """``n`` breakers with one name on ``n`` backends (as ``n`` processes would have)."""
    url, prefix = redis_url(), fresh_prefix()
    return [
        CircuitBreaker(name="svc", backend=RedisBackend(url, prefix=prefix), **kw)
        for _ in range(n)
    ]


def fail() -> None:
    raise httpx.ConnectError("refused")


def test_threads_open_a_redis_breaker_for_every_process() -> None:
    a, b = redis_breakers(2, failure_threshold=3, recovery_timeout=30.0)
    for _ in range(3):
        with pytest.raises(httpx.ConnectError):
            a.call_sync(fail)
    assert a.state is CircuitState.OPEN
    called: list[int] = []
    with pytest.raises(CircuitBreakerOpenError):
        b.call_sync(called.append, 1)  # the other "process" asks Redis: open
    assert called == [] and b.state is CircuitState.OPEN


def test_one_half_open_probe_among_50_threads_of_two_processes() -> None:
    a, b = redis_breakers(2, failure_threshold=1, recovery_timeout=0.3)
    with pytest.raises(httpx.ConnectError):
        a.call_sync(fail)
    time.sleep(0.4)  # the cooldown, on Redis's clock
    probes: list[int] = []
    lock = threading.Lock()

    def probe() -> str:
        time.sleep(0.05)
        with lock:
            probes.append(1)
        return "ok"

    def call(i: int) -> str:
        try:
            return (a if i % 2 else b).call_sync(probe)
        except CircuitBreakerOpenError:
            return "refused"

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, range(50)))
    assert len(probes) == 1 and results.count("ok") == 1 and results.count("refused") == 49
    assert a.call_sync(lambda: "closed again") == "closed again"
    assert a.state is CircuitState.CLOSED


def test_a_redis_breaker_from_threads_when_redis_is_down() -> None:
    local = CircuitBreaker(
        failure_threshold=2, backend=RedisBackend(closed_port_url(), timeout=0.2), name="d"
    )
    for _ in range(2):
        with pytest.raises(httpx.ConnectError):
            local.call_sync(fail)
    assert local.state is CircuitState.OPEN  # counted by the local machine meanwhile
    opened = CircuitBreaker(
        failure_threshold=1, name="d",
        backend=RedisBackend(closed_port_url(), "p", "open", timeout=0.2),
    )
    assert opened.call_sync(lambda: 7) == 7
    closed = CircuitBreaker(
        name="d", backend=RedisBackend(closed_port_url(), "p", "closed", timeout=0.2)
    )
    with pytest.raises(SharedStateUnavailableError):
        closed.call_sync(lambda: 7)


def test_a_redis_breaker_from_a_given_async_client_serves_threads_locally() -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url())
    breaker = CircuitBreaker(failure_threshold=1, backend=RedisBackend(client), name="g")
    with pytest.raises(httpx.ConnectError):
        breaker.call_sync(fail)
    assert breaker.state is CircuitState.OPEN


def test_an_interrupted_redis_probe_gives_its_lease_back() -> None:
    (breaker,) = redis_breakers(1, failure_threshold=1, recovery_timeout=0.2)
    with pytest.raises(httpx.ConnectError):
        breaker.call_sync(fail)
    time.sleep(0.3)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call_sync(interrupted)
    assert breaker.call_sync(lambda: httpx.Response(200)).status_code == 200  # a new probe
    assert breaker.state is CircuitState.CLOSED
    assert breaker.call_sync(lambda: httpx.Response(503)).status_code == 503
    assert breaker.state is CircuitState.OPEN  # recorded through Redis: 1 failure opens it
