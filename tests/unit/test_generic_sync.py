"""The generic retry helpers on plain (sync) functions: retry() and the decorators.

Nothing sleeps for real: the helpers sleep on the injected clock
(``FakeClock.sleep_sync`` records and advances), and a counting clock proves
that a clock without ``sleep_sync`` falls back to ``time.sleep``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time

import httpx
import pytest

from httpx_resilience import (
    ConfigurationError,
    HTTPResponseError,
    RateLimitError,
    RetryBudget,
    RetryExhaustedError,
    RetryStats,
    retry,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from httpx_resilience.testing import FakeClock, set_testing, testing_mode


class SyncFlaky:
    """Fails with the given exceptions in turn, then returns 'ok ...'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"ok {args} {kwargs}"


class CountingClock:
    """A clock without ``sleep_sync``: the helpers fall back to ``time.sleep``."""

    def __init__(self) -> None:
        self.async_sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        self.async_sleeps.append(seconds)


def test_retry_succeeds_after_failures_with_exact_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """Two failures then success: sleeps 1 s then 2 s on the clock; WARNING, WARNING, INFO."""
    clock = FakeClock()
    f = SyncFlaky(ConnectionError("net"), ConnectionError("net"))
    with caplog.at_level(logging.INFO, logger="httpx_resilience.retry"):
        result = retry(f, 1, clock=clock, key="v")
    assert result == "ok (1,) {'key': 'v'}" and f.calls == 3
    assert clock.sleeps == [1.0, 2.0]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "INFO"]
    assert caplog.records[0].getMessage() == (
        "SyncFlaky: attempt 1/3 failed: ConnectionError: net. Retrying in 1.00 s"
    )
    assert caplog.records[2].getMessage() == "SyncFlaky: succeeded after 3 attempts"


def test_retry_exhaustion_reraises_the_last_error_with_a_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The last error itself, its note giving the count; ERROR logged once."""
    errors = [OSError("first"), OSError("second"), OSError("last")]
    f = SyncFlaky(*errors)
    with caplog.at_level(logging.ERROR, logger="httpx_resilience.retry"), pytest.raises(
        OSError
    ) as info:
        retry(f, clock=FakeClock(), name="load")
    assert info.value is errors[2]
    assert info.value.__notes__ == ["load: gave up after 3 attempt(s) (all 3 attempts failed)"]
    assert [r.getMessage() for r in caplog.records] == [
        "load: all 3 attempts failed. Last error: OSError: last"
    ]


def test_retry_wrap_exhausted_and_unlisted_exceptions() -> None:
    """wrap_exhausted gives RetryExhaustedError chained to the last error; an exception
    type not listed propagates at once."""
    last = ConnectionError("down")
    with pytest.raises(RetryExhaustedError) as info:
        retry(SyncFlaky(ConnectionError("x"), last), max_attempts=2, wrap_exhausted=True,
              clock=FakeClock())
    assert info.value.__cause__ is last and info.value.attempts == 2
    f = SyncFlaky(ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        retry(f, exceptions=ConnectionError, clock=FakeClock())
    assert f.calls == 1


def test_the_decorator_keeps_a_plain_function_plain_and_counts_stats() -> None:
    """@with_retry on a def: the call returns the value (no coroutine); stats counted."""
    stats = RetryStats()
    clock = FakeClock()
    f = SyncFlaky(OSError("x"))

    @with_retry(max_attempts=3, delay=0.5, stats=stats, clock=clock)
    def call(n: int) -> str:
        return f(n)

    assert not inspect.iscoroutinefunction(call)
    assert call(7) == "ok (7,) {}"
    assert (stats.calls, stats.attempts, stats.retries, stats.recovered) == (1, 2, 1, 1)
    assert stats.by_exception == {"OSError": 1} and clock.sleeps == [0.5]
    assert call.__name__ == "call" and str(inspect.signature(call)) == "(n: 'int') -> 'str'"


def test_network_and_api_decorators_on_plain_functions() -> None:
    """@with_network_retry skips ValueError; @with_api_retry retries 503 and 429 (its
    retry_after) and never 404."""
    clock = FakeClock()
    net = SyncFlaky(httpx.ConnectError("refused"), ValueError("bad"))
    decorated = with_network_retry(clock=clock)(net)
    with pytest.raises(ValueError):
        decorated()
    assert net.calls == 2 and clock.sleeps == [1.0]

    api = SyncFlaky(HTTPResponseError(503, "down"), RateLimitError(429, "slow", retry_after=9.0))
    assert with_api_retry(clock=clock)(api)().startswith("ok")
    assert clock.sleeps == [1.0, 1.0, 9.0]
    missing = SyncFlaky(HTTPResponseError(404, "missing"))
    with pytest.raises(HTTPResponseError):
        with_api_retry(clock=clock)(missing)()
    assert missing.calls == 1


def test_retry_after_carried_by_an_httpx_status_error_is_honoured() -> None:
    """A 503 with Retry-After: 4 waits 4 s (more than the 1 s backoff)."""
    clock = FakeClock()
    req = httpx.Request("GET", "http://api.test/")
    resp = httpx.Response(503, headers={"Retry-After": "4"}, request=req)
    f = SyncFlaky(httpx.HTTPStatusError("503", request=req, response=resp))
    assert retry(f, clock=clock, retry_if=lambda e: True).startswith("ok")
    assert clock.sleeps == [4.0]


def test_the_budget_stops_sync_retries() -> None:
    """A spent RetryBudget stops them; the note says why."""
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=FakeClock())
    f = SyncFlaky(ConnectionError("x"), ConnectionError("x"))
    with pytest.raises(ConnectionError) as info:
        retry(f, budget=budget, clock=FakeClock())
    assert f.calls == 1
    assert info.value.__notes__ == ["SyncFlaky: gave up after 1 attempt(s) (the retry budget is spent)"]


def test_the_testing_switch_caps_attempts_and_never_sleeps() -> None:
    """Under testing_mode(attempts=2): two attempts, waits of zero, nothing slept; then
    the process-wide switch does the same."""
    clock = FakeClock()
    f = SyncFlaky(OSError("a"), OSError("b"), OSError("c"))
    with testing_mode(attempts=2), pytest.raises(OSError, match="b"):
        retry(f, max_attempts=5, clock=clock)
    assert f.calls == 2 and clock.sleeps == []
    g = SyncFlaky(RateLimitError(429, "slow", retry_after=30.0))
    with set_testing(True, attempts=3):
        assert with_api_retry(clock=clock)(g)().startswith("ok")
    assert g.calls == 2 and clock.sleeps == []


def test_a_clock_without_sleep_sync_falls_back_to_time_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user clock written before sync support still works: time.sleep is used
    (patched here: nothing sleeps), its async sleep is not."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    clock = CountingClock()
    assert retry(SyncFlaky(OSError("x")), delay=0.25, clock=clock).startswith("ok")
    assert slept == [0.25] and clock.async_sleeps == []


def test_retry_refuses_async_functions_without_calling_them() -> None:
    """retry() on an async def, or on a plain function returning a coroutine, is a
    ConfigurationError naming retry_async; the coroutine is closed, not left unawaited."""
    calls: list[int] = []

    async def fetch() -> str:
        calls.append(1)
        return "x"

    with pytest.raises(ConfigurationError, match="retry_async"):
        retry(fetch, clock=FakeClock())
    with pytest.raises(ConfigurationError, match="retry_async"):
        retry(functools.partial(fetch), clock=FakeClock())
    made: list[object] = []

    def returns_coroutine() -> object:
        coroutine = fetch()
        made.append(coroutine)
        return coroutine

    with pytest.raises(ConfigurationError, match="returned coroutine"):
        retry(returns_coroutine, clock=FakeClock())
    assert calls == [] and made and made[0].cr_frame is None  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="not callable"):
        retry(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_attempts"):
        retry(SyncFlaky(), max_attempts=0)


def test_an_object_with_async_call_is_decorated_as_async() -> None:
    """The decorator sees an async __call__ (and a partial of an async def) as async."""

    class Async:
        async def __call__(self) -> str:
            return "a"

    async def plain_async(x: int) -> int:
        return x

    assert inspect.iscoroutinefunction(with_retry()(Async()))
    assert inspect.iscoroutinefunction(with_retry()(functools.partial(plain_async, 1)))
    assert asyncio.run(with_retry()(Async())()) == "a"


def test_a_plain_function_returning_a_coroutine_is_retried_asynchronously() -> None:
    """The first attempt raises synchronously (retried as a sync call), the second
    returns a coroutine that fails when awaited, the third succeeds: the wrapper's
    result is a coroutine that carries the call on (attempts, stats, waits)."""
    clock = FakeClock()
    stats = RetryStats()
    calls: list[int] = []

    async def body() -> str:
        if len(calls) == 2:
            raise ConnectionError("late")
        return "ok"

    @with_retry(clock=clock, stats=stats)
    def start() -> object:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("early")
        return body()

    pending = start()
    assert inspect.iscoroutine(pending)
    assert asyncio.run(pending) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 3 and clock.sleeps == [1.0, 2.0]
    assert (stats.calls, stats.attempts, stats.retries, stats.recovered) == (1, 3, 2, 1)


def test_one_decorated_function_from_eight_threads() -> None:
    """Threads share the decorated function, its stats counters stay per call."""
    clock = FakeClock()
    lock = threading.Lock()
    seen: dict[int, int] = {}

    @with_retry(max_attempts=2, clock=clock)
    def work(i: int) -> int:
        with lock:
            seen[i] = seen.get(i, 0) + 1
            first = seen[i] == 1
        if first:
            raise OSError(f"first try of {i}")
        return i * 2

    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(work(i))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [i * 2 for i in range(8)]
    assert seen == dict.fromkeys(range(8), 2) and clock.sleeps == [1.0] * 8


async def test_retry_async_keeps_refusing_plain_results() -> None:
    """retry_async is unchanged: a plain function's non-awaitable result is refused."""
    with pytest.raises(ConfigurationError, match="use retry\\(\\) for a plain function"):
        await retry_async(lambda: 1, clock=FakeClock())  # type: ignore[arg-type, return-value]


def test_validated_settings_are_reused_but_never_for_another_type() -> None:
    """The policy of a set of settings is built once (validation is most of a call's
    cost); True is not 1 for the cache, and an unhashable value is still refused."""
    from httpx_resilience.policies.generic import _cached_policy

    _cached_policy.cache_clear()
    for _ in range(3):
        assert retry(lambda: 1, max_attempts=1, clock=FakeClock()) == 1
    assert _cached_policy.cache_info().misses == 1 and _cached_policy.cache_info().hits == 2
    with pytest.raises(ConfigurationError, match="max_attempts must be an integer, got True"):
        retry(lambda: 1, max_attempts=True, clock=FakeClock())
    with pytest.raises(ConfigurationError, match=r"got \[1\]"):
        retry(lambda: 1, max_attempts=[1], clock=FakeClock())  # type: ignore[arg-type]


def test_one_stats_shared_by_eight_threads_loses_no_count() -> None:
    """8 threads × 300 calls, each failing once then succeeding, sharing one RetryStats:
    every count is exact."""
    stats = RetryStats()
    clock = FakeClock()
    local = threading.local()

    @with_retry(max_attempts=2, delay=0.0, stats=stats, clock=clock)
    def work() -> int:
        local.n = getattr(local, "n", 0) + 1
        if local.n % 2:
            raise OSError("odd attempt")
        return 1

    def run() -> None:
        for _ in range(300):
            work()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (stats.calls, stats.attempts, stats.retries, stats.recovered) == (2400, 4800, 2400, 2400)
    assert stats.by_exception == {"OSError": 2400} and stats.exhausted == 0
