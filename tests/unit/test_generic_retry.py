"""Unit tests of retry_async and the seed 002 decorators, under a fake clock."""

from __future__ import annotations

import logging

import httpx
import pytest

from httpx_resilience.exceptions import (
    CircuitBreakerOpenError,
    ConfigurationError,
    HTTPResponseError,
    RateLimitError,
    RetryExhaustedError,
)
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.policies.generic import (
    RetryStats,
    is_api_error,
    is_network_error,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from httpx_resilience.testing.clock import FakeClock


class Flaky:
    """Fails with the given exceptions in turn, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return f"ok {args} {kwargs}"


async def test_retry_async_success_after_failures_with_exact_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """Two failures then success: waits 1 s then 2 s, logs WARNING twice and INFO once."""
    clock = FakeClock()
    f = Flaky(ConnectionError("net"), ConnectionError("net"))
    with caplog.at_level(logging.INFO, logger="httpx_resilience.retry"):
        result = await retry_async(f, 1, clock=clock, key="v")
    assert result == "ok (1,) {'key': 'v'}" and f.calls == 3
    assert clock.sleeps == [1.0, 2.0]
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "WARNING", "INFO"]
    assert "attempt 1/3 failed" in caplog.records[0].getMessage()
    assert "Retrying in 1.00 s" in caplog.records[0].getMessage()
    assert "succeeded after 3 attempts" in caplog.records[2].getMessage()


async def test_retry_async_exhaustion_chains_last_error(caplog: pytest.LogCaptureFixture) -> None:
    """After max_attempts failures, RetryExhaustedError carries attempts and the last error; ERROR logged."""
    clock = FakeClock()
    f = Flaky(*(TimeoutError(f"t{i}") for i in range(5)))
    with pytest.raises(RetryExhaustedError) as info:
        await retry_async(f, max_attempts=3, delay=2.0, backoff=1.5, clock=clock)
    assert info.value.attempts == 3 and str(info.value.__cause__) == "t2"
    assert clock.sleeps == [2.0, 3.0]
    assert any(r.levelname == "ERROR" and "all 3 attempts failed" in r.getMessage() for r in caplog.records)


async def test_reraise_gives_the_original_exception() -> None:
    """reraise=True re-raises the last exception itself."""
    f = Flaky(*(KeyError(i) for i in range(3)))
    with pytest.raises(KeyError):
        await retry_async(f, max_attempts=2, reraise=True, clock=FakeClock())


async def test_only_listed_exceptions_are_retried() -> None:
    """An exception outside `exceptions` propagates at once."""
    f = Flaky(ValueError("bad"))
    with pytest.raises(ValueError):
        await retry_async(f, exceptions=(ConnectionError,), clock=FakeClock())
    assert f.calls == 1


async def test_with_retry_decorator_and_stats() -> None:
    """@with_retry retries and updates RetryStats counters."""
    stats = RetryStats()
    clock = FakeClock()
    f = Flaky(OSError("x"))

    @with_retry(max_attempts=3, delay=0.5, stats=stats, clock=clock)
    async def call(n: int) -> str:
        return await f(n)

    assert await call(7) == "ok (7,) {}"
    assert (stats.calls, stats.attempts, stats.retries, stats.recovered) == (1, 2, 1, 1)
    assert stats.by_exception == {"OSError": 1}
    assert call.__name__ == "call"


def test_with_retry_validates_options() -> None:
    """Unknown options, bad values and sync functions are ConfigurationErrors."""
    with pytest.raises(ConfigurationError, match="bogus"):
        with_retry(bogus=1)
    with pytest.raises(ConfigurationError, match="max_attempts"):
        with_retry(max_attempts=0)
    with pytest.raises(ConfigurationError, match="async"):
        with_retry()(lambda: 1)  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigurationError):
        with_retry(jitter="sometimes")


async def test_with_network_retry_skips_non_network_errors() -> None:
    """@with_network_retry retries connection errors but not ValueError or an open breaker."""
    clock = FakeClock()
    f = Flaky(httpx.ConnectError("x"))

    @with_network_retry(max_attempts=3, clock=clock)
    async def ok() -> str:
        return await f()

    assert (await ok()).startswith("ok") and f.calls == 2

    g = Flaky(CircuitBreakerOpenError("svc", 5.0))

    @with_network_retry(clock=clock)
    async def refused() -> str:
        return await g()

    with pytest.raises(CircuitBreakerOpenError):
        await refused()
    assert g.calls == 1


async def test_with_api_retry_retries_5xx_and_429_not_4xx() -> None:
    """@with_api_retry retries 5xx/429 (honouring retry_after) and never 404."""
    clock = FakeClock()
    f = Flaky(HTTPResponseError(503, "down"), RateLimitError(429, "slow", retry_after=9.0))

    @with_api_retry(max_attempts=3, clock=clock)
    async def call() -> str:
        return await f()

    assert (await call()).startswith("ok") and clock.sleeps == [1.0, 9.0]

    g = Flaky(HTTPResponseError(404, "missing"))

    @with_api_retry(clock=clock)
    async def missing() -> str:
        return await g()

    with pytest.raises(HTTPResponseError):
        await missing()
    assert g.calls == 1


def test_error_predicates() -> None:
    """Network and API predicates classify httpx, stdlib and status errors."""
    req = httpx.Request("GET", "http://x")
    status = httpx.HTTPStatusError("x", request=req, response=httpx.Response(502, request=req))
    assert is_network_error(httpx.ReadTimeout("x")) and is_network_error(ConnectionResetError())
    assert not is_network_error(ValueError())
    assert is_api_error(status) and is_api_error(HTTPResponseError(429, "x"))
    assert not is_api_error(HTTPResponseError(400, "x"))


async def test_shared_budget_limits_generic_retries() -> None:
    """A spent RetryBudget stops generic retries too."""
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=FakeClock())
    f = Flaky(ConnectionError("x"), ConnectionError("x"))
    with pytest.raises(RetryExhaustedError, match="budget"):
        await retry_async(f, budget=budget, clock=FakeClock())
    assert f.calls == 1


async def test_non_callable_is_rejected() -> None:
    """retry_async on a non-callable raises ConfigurationError."""
    with pytest.raises(ConfigurationError):
        await retry_async(42)  # type: ignore[arg-type]
