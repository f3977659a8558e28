"""Policies shared by threads, on real time: a limiter's rate holds across threads and tasks.

Eight threads (and, in the mixed test, asyncio tasks beside them) take from
one limiter as fast as it lets them, for about three seconds. The grants are
counted by timestamp in a window that starts after the start-up (the initial
burst) and ends before the threads stop, so the count measures the steady
rate alone; it is compared with the configured rate as a ratio (±2 %).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from httpx_resilience import SlidingWindowRateLimiter, TokenBucketRateLimiter
from httpx_resilience.policies.limiter._base import RateLimiter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

RATE = 100.0
RUN = 3.0  # seconds the takers run
WINDOW = (0.5, 2.5)  # seconds after the start over which grants are counted


def take_until(limiter: RateLimiter, stop_at: float, stamps: list[float], lock: threading.Lock,
               ) -> None:
    """A thread's loop: ``acquire_sync`` and stamp each grant until ``stop_at``."""
    while time.monotonic() < stop_at:
        limiter.acquire_sync()
        now = time.monotonic()
        with lock:
            stamps.append(now)


def assert_rate(stamps: list[float], start: float, rate: float) -> None:
    """The grants stamped within ``WINDOW`` after ``start`` come at ``rate`` (±2 %)."""
    lo, hi = start + WINDOW[0], start + WINDOW[1]
    counted = sum(lo <= t < hi for t in stamps)
    expected = rate * (WINDOW[1] - WINDOW[0])
    assert abs(counted / expected - 1.0) <= 0.02, (counted, expected)


@pytest.mark.parametrize("kind", ["token_bucket", "sliding_window"])
def test_eight_threads_share_one_rate(kind: str) -> None:
    limiter: RateLimiter
    if kind == "token_bucket":
        limiter = TokenBucketRateLimiter(RATE, 2)
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
    assert_rate(stamps, start, RATE)


def test_threads_and_tasks_share_one_rate_and_both_progress() -> None:
    limiter = TokenBucketRateLimiter(RATE, 2)
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
    limiter = TokenBucketRateLimiter(RATE, 2)
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
