"""Policies shared by threads: the breaker, limiter, bulkhead, budget, throttle and tracker.

Every test here races real threads against one policy (with the interpreter's
switch interval shortened so they interleave often) and checks what no lost
update may change: probe counts, window counts, tokens, slots. Time is a
``FakeClock`` wherever the check does not need real time; the waits that do
are short and compared as ratios or orders, never against a wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    AdaptiveThrottle,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerOpenError,
    CircuitState,
    ConfigurationError,
    RateLimiter,
    RateLimiterTimeout,
    RetryBudget,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
)
from httpx_resilience.backends import Grant, MemoryBackend
from httpx_resilience.clock import SYSTEM_CLOCK, sleep_sync
from httpx_resilience.policies.hedging import LatencyTracker
from httpx_resilience.testing import FakeClock, testing_mode


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    """Threads switch every microsecond, so races that can happen do."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(n: int, target: Callable[[int], Any]) -> list[Any]:
    """Start ``n`` threads at one barrier running ``target(i)``; their results, in index order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` (another thread's progress) for up to 10 s."""
    for _ in range(10_000):
        if predicate():
            return
        time.sleep(0.001)
    raise AssertionError(f"timed out waiting for {what}")


# -- clock --------------------------------------------------------------------------


def test_sleep_sync_advances_a_fake_clock_and_records_it() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    sleep_sync(clock, 2.5)
    clock.sleep_sync(-1.0)
    assert clock.monotonic() - start == 2.5
    assert clock.sleeps == [2.5, 0.0]


def test_sleep_sync_of_a_clock_without_it_uses_real_time() -> None:
    class WallOnly:
        def monotonic(self) -> float:
            return time.monotonic()

        def wall(self) -> float:
            return time.time()

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(seconds)

    before = time.monotonic()
    sleep_sync(WallOnly(), 0.01)
    sleep_sync(WallOnly(), 0.0)
    SYSTEM_CLOCK.sleep_sync(0.0)
    assert time.monotonic() - before >= 0.01


def test_fake_clock_loses_no_advance_across_threads() -> None:
    clock = FakeClock(start=0.0)
    run_threads(8, lambda i: [clock.sleep_sync(0.5) for _ in range(200)])
    assert clock.monotonic() == 8 * 200 * 0.5
    assert len(clock.sleeps) == 1600


# -- circuit breaker ----------------------------------------------------------------


def open_then_due(breaker: CircuitBreaker, clock: FakeClock) -> None:
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.advance(breaker.recovery_timeout)


@pytest.mark.parametrize("probes", [1, 3])
def test_exactly_half_open_max_calls_probes_from_50_threads(probes: int) -> None:
    clock = FakeClock()
    transitions: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=probes, clock=clock,
        listeners=[lambda t: transitions.append((t.old, t.new))],
    )
    for _ in range(10):  # the race, again and again
        open_then_due(breaker, clock)

        def ask(_: int) -> Any:
            try:
                return breaker.acquire()
            except CircuitBreakerOpenError:
                return None

        permits = [p for p in run_threads(50, ask) if p is not None]
        assert len(permits) == probes and all(p.is_probe for p in permits)
        assert breaker.state is CircuitState.HALF_OPEN
        run_threads(probes, lambda i, ended=permits: ended[i].success(0.01))
        assert breaker.state is CircuitState.CLOSED
    assert transitions.count((CircuitState.HALF_OPEN, CircuitState.CLOSED)) == 10
    assert transitions.count((CircuitState.OPEN, CircuitState.HALF_OPEN)) == 10


def test_a_failed_probe_among_threads_reopens_once() -> None:
    clock = FakeClock()
    opened: list[str] = []
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5.0, half_open_max_calls=4, clock=clock,
        listeners=[lambda t: opened.append(t.reason) if t.new is CircuitState.OPEN else None],
    )
    open_then_due(breaker, clock)
    permits = [breaker.acquire() for _ in range(4)]
    run_threads(4, lambda i: permits[i].failure(0.0) if i == 2 else permits[i].success(0.0))
    assert breaker.state is CircuitState.OPEN
    assert opened == ["1 consecutive failure", "half-open probe failed"]


def test_manual_probes_from_threads_take_the_slots_too() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1.0, clock=clock)
    open_then_due(breaker, clock)

    def gate(_: int) -> bool:
        try:
            breaker.raise_if_open()
        except CircuitBreakerOpenError:
            return False
        return True

    assert sum(run_threads(50, gate)) == 1
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_concurrent_outcomes_are_all_counted() -> None:
    clock = FakeClock()
    windowed = CircuitBreaker(
        failure_threshold=10**6, failure_rate_threshold=1.0, window_size=100_000,
        minimum_calls=100_000, clock=clock,
    )
    consecutive = CircuitBreaker(failure_threshold=10**6, clock=clock)

    def record(i: int) -> None:
        for n in range(500):
            windowed.acquire().failure(0.0) if n % 4 == 0 else windowed.acquire().success(0.0)
            consecutive.acquire().failure(0.0)

    run_threads(8, record)
    assert windowed.window_counts() == (4000, 1000, 0)
    assert consecutive.failure_count == 4000
    assert windowed.state is CircuitState.CLOSED


def test_threads_open_a_breaker_exactly_once() -> None:
    clock = FakeClock()
    transitions: list[CircuitState] = []
    breaker = CircuitBreaker(
        failure_threshold=100, clock=clock, listeners=[lambda t: transitions.append(t.new)]
    )

    def fail(_: int) -> None:
        for _ in range(50):
            with contextlib.suppress(CircuitBreakerOpenError):
                breaker.acquire().failure(0.0)

    run_threads(8, fail)
    assert transitions == [CircuitState.OPEN]
    assert breaker.state is CircuitState.OPEN


def test_per_host_children_from_threads_are_one_per_key() -> None:
    breaker = CircuitBreaker(scope="host", max_keys=64)
    seen = run_threads(16, lambda i: [breaker.for_key(f"h{k}") for k in range(32)])
    assert len(breaker.children()) == 32
    assert all(row[k] is seen[0][k] for row in seen for k in range(32))


def test_call_sync_records_outcomes_and_refuses_when_open() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=5.0, clock=clock)

    def boom() -> None:
        raise httpx.ConnectError("refused")

    assert breaker.call_sync(lambda x, y=0: x + y, 1, y=2) == 3
    assert breaker.call_sync(lambda: httpx.Response(404)).status_code == 404
    assert breaker.failure_count == 0
    assert breaker.call_sync(lambda: httpx.Response(503)).status_code == 503
    assert breaker.failure_count == 1
    with pytest.raises(httpx.ConnectError):
        breaker.call_sync(boom)
    assert breaker.state is CircuitState.OPEN
    called: list[int] = []
    with pytest.raises(CircuitBreakerOpenError):
        breaker.call_sync(called.append, 1)
    assert called == []


def test_call_sync_judges_exceptions_like_call() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5.0, clock=clock)

    def not_a_failure() -> None:
        raise KeyError("mine")

    with pytest.raises(KeyError):
        breaker.call_sync(not_a_failure)
    assert breaker.state is CircuitState.CLOSED
    open_then_due(breaker, clock)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call_sync(interrupted)  # a probe that ends without an outcome frees its slot
    assert breaker.call_sync(lambda: "back") == "back"
    assert breaker.state is CircuitState.CLOSED


def test_a_breaker_state_machine_copies_with_a_fresh_lock() -> None:
    import copy

    breaker = CircuitBreaker(failure_threshold=3)
    breaker.record_failure()
    twin = copy.deepcopy(breaker._machine)
    assert twin.consecutive_failures == 1 and twin.lock is not breaker._machine.lock
    assert "failures=1/3" in repr(breaker)


# -- rate limiter -------------------------------------------------------------------


def test_try_acquire_from_threads_grants_exactly_the_bucket() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(1.0, 1000, clock=clock)
    granted = run_threads(8, lambda i: sum(limiter.try_acquire() for _ in range(200)))
    assert sum(granted) == 1000
    assert limiter.tokens == 0


def test_sliding_window_from_threads_never_exceeds_its_limit() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(300, 1.0, clock=clock)
    granted = run_threads(8, lambda i: sum(limiter.try_acquire(2) for _ in range(40)))
    assert sum(granted) == 150 and limiter.used == 300


def test_acquire_sync_waits_on_the_fake_clock() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(2.0, 1, clock=clock)
    assert limiter.acquire_sync() == 0.0
    assert limiter.acquire_sync() == pytest.approx(0.5)
    assert limiter.acquire_sync(1) == pytest.approx(0.5)
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_acquire_sync_from_threads_takes_the_time_the_rate_needs() -> None:
    clock = FakeClock(start=0.0)
    limiter = TokenBucketRateLimiter(10.0, 1, clock=clock)
    run_threads(4, lambda i: [limiter.acquire_sync() for _ in range(10)])
    # 40 grants at 10/s from a full bucket of 1: the sleeps add up to 3.9 s.
    assert clock.monotonic() == pytest.approx(3.9)
    assert limiter.waiters == 0


def test_acquire_sync_is_fifo_across_threads() -> None:
    limiter = TokenBucketRateLimiter(50.0, 2)
    assert limiter.try_acquire(2)
    order: list[int] = []
    lock = threading.Lock()

    def take(i: int, tokens: int) -> None:
        limiter.acquire_sync(tokens)
        with lock:
            order.append(i)

    threads = []
    for i, tokens in enumerate([2, 1, 2, 1, 1, 2]):  # a later small one never overtakes
        t = threading.Thread(target=take, args=(i, tokens))
        t.start()
        threads.append(t)
        wait_until(lambda i=i: limiter.waiters == i + 1 or len(order) > 0, "the waiter to queue")
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2, 3, 4, 5]


def test_acquire_sync_refuses_beyond_max_wait_up_front() -> None:
    limiter = TokenBucketRateLimiter(4.0, 1, max_wait=0.6)
    assert limiter.try_acquire()

    def take(_: int) -> str:
        try:
            limiter.acquire_sync()
        except RateLimiterTimeout:
            return "refused"
        return "granted"

    outcomes = run_threads(5, take)
    assert sorted(outcomes) == ["granted", "granted", "refused", "refused", "refused"]
    assert limiter.waiters == 0


def test_a_pause_refuses_waiting_threads_it_pushes_past_max_wait() -> None:
    limiter = TokenBucketRateLimiter(2.0, 1, max_wait=1.2)  # slow: both stay queued a while
    assert limiter.try_acquire()
    results: list[str] = []

    def take() -> None:
        try:
            limiter.acquire_sync()
            results.append("granted")
        except RateLimiterTimeout:
            results.append("refused")

    threads = [threading.Thread(target=take) for _ in range(2)]
    for i, t in enumerate(threads):
        t.start()
        wait_until(lambda i=i: limiter.waiters == i + 1, "the waiter to queue")
    limiter.pause(5.0)
    for t in threads:
        t.join(timeout=10)
    assert results == ["refused", "refused"]
    assert limiter.waiters == 0


def test_acquire_sync_ends_at_its_timeout() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(10.0, 1, max_wait=5.0, clock=clock)
    assert limiter.try_acquire()
    with pytest.raises(TimeoutError, match=r"past the 0\.050 s left \(the deadline\)"):
        limiter.acquire_sync(timeout=0.05)
    assert limiter.waiters == 0 and clock.sleeps == []
    assert limiter.acquire_sync(timeout=0.5) == pytest.approx(0.1)
    slow = TokenBucketRateLimiter(0.1, 1, max_wait=1.0, clock=clock)
    assert slow.try_acquire()
    with pytest.raises(RateLimiterTimeout):  # max_wait binds first: its own error
        slow.acquire_sync(timeout=3.0)


def test_a_pause_past_a_thread_timeout_refuses_it_with_timeout_error() -> None:
    limiter = TokenBucketRateLimiter(2.0, 1)  # slow: both stay queued a while
    assert limiter.try_acquire()
    results: list[BaseException | float] = []

    def take() -> None:
        try:
            results.append(limiter.acquire_sync(timeout=2.0))
        except TimeoutError as exc:
            results.append(exc)

    threads = [threading.Thread(target=take) for _ in range(2)]
    for i, t in enumerate(threads):
        t.start()
        wait_until(lambda i=i: limiter.waiters == i + 1, "the waiter to queue")
    limiter.pause(10.0)
    for t in threads:
        t.join(timeout=10)
    assert [type(r) for r in results] == [TimeoutError, TimeoutError]


def test_a_shared_limiter_thread_ends_at_its_timeout() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(1.0, 1, backend=MemoryBackend(clock=clock), name="d",
                                     clock=clock)
    assert limiter.acquire_sync(timeout=0.1) == 0.0
    with pytest.raises(TimeoutError, match="the deadline"):
        limiter.acquire_sync(timeout=0.1)
    limiter.pause(30.0)
    with pytest.raises(TimeoutError, match="the deadline"):
        limiter.acquire_sync(timeout=5.0)
    assert limiter.acquire_sync(timeout=60.0) == pytest.approx(30.0, abs=1.0)


def test_acquire_sync_waits_nothing_under_the_testing_switch() -> None:
    limiter = TokenBucketRateLimiter(0.01, 1)
    assert limiter.try_acquire()
    with testing_mode():
        assert [limiter.acquire_sync() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_acquire_sync_checks_its_tokens() -> None:
    limiter = TokenBucketRateLimiter(10.0, 5)
    with pytest.raises(ConfigurationError, match="at most 5"):
        limiter.acquire_sync(6)
    with pytest.raises(ConfigurationError):
        limiter.acquire_sync("1")  # type: ignore[arg-type]


def test_a_user_limiter_without_acquire_sync() -> None:
    class AsyncOnly(RateLimiter):
        def __init__(self, free: bool) -> None:
            self.free = free

        async def acquire(self, tokens: int = 1) -> float:
            return 0.0

        def is_configured(self) -> bool:
            return True

        def try_acquire(self, tokens: int = 1) -> bool:
            return self.free

    assert AsyncOnly(True).acquire_sync() == 0.0
    with pytest.raises(ConfigurationError, match="implement acquire_sync"):
        AsyncOnly(False).acquire_sync()


async def test_a_thread_and_a_task_queue_in_arrival_order() -> None:
    limiter = TokenBucketRateLimiter(5.0, 1)  # slow: the thread stays queued a while
    assert limiter.try_acquire()
    order: list[str] = []
    first = threading.Thread(target=lambda: (limiter.acquire_sync(), order.append("thread 1")))
    first.start()
    await asyncio.to_thread(wait_until, lambda: limiter.waiters == 1, "the thread to queue")

    async def task() -> None:
        await limiter.acquire()
        order.append("task")

    queued = asyncio.create_task(task())
    for _ in range(3):  # the task runs up to its wait: it is in the queue
        await asyncio.sleep(0)
    assert limiter.waiters == 2
    second = threading.Thread(target=lambda: (limiter.acquire_sync(), order.append("thread 2")))
    second.start()
    await queued  # woken from thread 1's thread, through the loop
    await asyncio.to_thread(second.join, 10)
    await asyncio.to_thread(first.join, 10)
    assert order == ["thread 1", "task", "thread 2"]


def test_per_host_limiters_from_threads_are_one_per_key() -> None:
    limiter = TokenBucketRateLimiter(10.0, 1, scope="host", max_keys=64)
    seen = run_threads(8, lambda i: [limiter.for_key(f"h{k}") for k in range(16)])
    assert all(row[k] is seen[0][k] for row in seen for k in range(16))
    assert "keys=16" in repr(limiter)


# -- bulkhead -----------------------------------------------------------------------


def test_bulkhead_caps_threads_inside() -> None:
    bulkhead = Bulkhead(3, max_queue=20)
    inside = 0
    peak = 0
    lock = threading.Lock()

    def work(_: int) -> None:
        nonlocal inside, peak
        for _ in range(5):
            with bulkhead.hold_sync():
                with lock:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.001)
                with lock:
                    inside -= 1

    run_threads(12, work)
    assert peak == 3
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


def test_bulkhead_serves_threads_fifo() -> None:
    bulkhead = Bulkhead(1, max_queue=5)
    bulkhead.acquire_sync()
    order: list[int] = []

    def enter(i: int) -> None:
        with bulkhead:
            order.append(i)

    threads = []
    for i in range(5):
        t = threading.Thread(target=enter, args=(i,))
        t.start()
        threads.append(t)
        wait_until(lambda i=i: bulkhead.queued == i + 1, "the thread to queue")
    bulkhead.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]
    assert (bulkhead.in_flight, bulkhead.queued) == (0, 0)


def test_bulkhead_sync_refusals_and_timeouts() -> None:
    bulkhead = Bulkhead(1, max_queue=1, max_wait=0.02)
    bulkhead.acquire_sync()
    with pytest.raises(BulkheadFullError, match="within max_wait"):
        bulkhead.acquire_sync()
    with pytest.raises(TimeoutError, match="the deadline"):
        bulkhead.acquire_sync(timeout=0.005)
    assert bulkhead.queued == 0
    refused: list[BaseException] = []

    def queue_then_give_up() -> None:
        try:
            bulkhead.acquire_sync()
        except BulkheadFullError as exc:
            refused.append(exc)

    blocker = threading.Thread(target=queue_then_give_up)
    blocker.start()
    blocker.join(timeout=10)
    assert len(refused) == 1 and bulkhead.queued == 0
    full = Bulkhead(1)
    full.acquire_sync()
    with pytest.raises(BulkheadFullError, match="queue places are taken"):
        full.acquire_sync(timeout=1.0)
    bulkhead.release()
    full.release()
    assert (bulkhead.in_flight, full.in_flight) == (0, 0)


async def test_bulkhead_hands_a_thread_slot_to_a_task_and_back() -> None:
    bulkhead = Bulkhead(1, max_queue=2)
    bulkhead.acquire_sync()
    order: list[str] = []

    async def task() -> None:
        async with bulkhead:
            order.append("task")

    queued = asyncio.create_task(task())
    for _ in range(3):  # the task runs up to its wait: it is in the queue
        await asyncio.sleep(0)
    assert bulkhead.queued == 1
    thread = threading.Thread(target=lambda: (bulkhead.acquire_sync(), order.append("thread")))
    thread.start()
    await asyncio.to_thread(wait_until, lambda: bulkhead.queued == 2, "the thread to queue")
    await asyncio.to_thread(bulkhead.release)  # from another thread: the task's loop is told
    await queued
    await asyncio.to_thread(thread.join, 10)
    assert order == ["task", "thread"]
    bulkhead.release()
    assert bulkhead.in_flight == 0


# -- budget, throttle, latency tracker ---------------------------------------------


def test_retry_budget_counts_every_request_and_spends_exactly_its_allowance() -> None:
    budget = RetryBudget(ratio=0.5, min_per_second=0.0, clock=FakeClock())
    run_threads(8, lambda i: [budget.record_request("h") for _ in range(1000)])
    assert budget.available("h") == 4000
    spent = run_threads(8, lambda i: sum(budget.try_spend("h") for _ in range(600)))
    assert sum(spent) == 4000
    assert budget.available("h") == 0


def test_adaptive_throttle_counts_every_attempt() -> None:
    throttle = AdaptiveThrottle(min_requests=10**9, clock=FakeClock())

    def record(i: int) -> None:
        for n in range(1000):
            throttle.record("h", accepted=n % 2 == 0)
            assert throttle.admit("h") == 0.0

    run_threads(8, record)
    assert throttle.counts("h") == (8000, 4000)
    assert throttle.probability("h") == 0.0


def test_latency_tracker_keeps_every_sample() -> None:
    tracker = LatencyTracker(size=1000, min_samples=20)
    run_threads(8, lambda i: [tracker.observe(0.001 * (i + 1)) for _ in range(100)])
    assert len(tracker) == 800
    assert tracker.percentile(1.0) == pytest.approx(0.008)
    tracker.reset()
    assert tracker.percentile(0.5) is None


def test_a_backend_whose_operation_suspends_keeps_threads_local() -> None:
    class Remote(MemoryBackend):
        async def token_bucket(self, name: str, **kw: Any) -> Grant:
            await asyncio.sleep(0)  # a round trip: no sync path
            return await super().token_bucket(name, **kw)

    clock = FakeClock()
    limiter = TokenBucketRateLimiter(10.0, 2, backend=Remote(), name="remote", clock=clock)
    assert limiter.acquire_sync() == 0.0
    assert limiter.tokens == 1.0  # taken from the local bucket


def test_a_pause_from_a_thread_is_shared_at_once() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    a = TokenBucketRateLimiter(10.0, 1, backend=backend, name="x", clock=clock)
    b = TokenBucketRateLimiter(10.0, 1, backend=backend, name="x", clock=clock)
    a.pause(10.0)  # no event loop here: written through the sync path
    assert asyncio.run(backend.paused_for("x")) == pytest.approx(10.0)
    with pytest.raises(TimeoutError):
        b.acquire_sync(timeout=1.0)
