"""Unit tests of MemoryBackend and of a limiter's shared path (``backend=``), on a fake clock.

The contract suite that runs the same checks against Redis is in
``tests/integration/test_redis_backend.py``; here the arithmetic is checked
exactly, with time moved by hand.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from httpx_resilience.backends import (
    Grant,
    MemoryBackend,
    SharedBackend,
    SharedStateUnavailableError,
    on_backend_down,
)
from httpx_resilience.backends._errors import BackendDown
from httpx_resilience.exceptions import ConfigurationError, RateLimiterTimeout
from httpx_resilience.policies._testing_mode import testing_mode
from httpx_resilience.policies.limiter import SlidingWindowRateLimiter, TokenBucketRateLimiter
from httpx_resilience.testing.clock import FakeClock


def assert_grant(grant: Grant, granted: bool, wait: float) -> None:
    assert grant.granted is granted, grant
    assert grant.wait == pytest.approx(wait, abs=1e-9), grant


# -- MemoryBackend: the contract's arithmetic -------------------------------------------


async def test_token_bucket_grants_the_burst_then_reserves_one_interval_apart() -> None:
    clock = FakeClock()
    b = MemoryBackend(clock=clock)
    for _ in range(2):
        assert_grant(await b.token_bucket("x", rate=10, burst=2, tokens=1, horizon=None), True, 0)
    assert_grant(await b.token_bucket("x", rate=10, burst=2, tokens=1, horizon=None), True, 0.1)
    assert_grant(await b.token_bucket("x", rate=10, burst=2, tokens=1, horizon=None), True, 0.2)
    clock.advance(0.2)
    # The reservations are spent: the next token comes 0.1 s after the last one.
    assert_grant(await b.token_bucket("x", rate=10, burst=2, tokens=1, horizon=None), True, 0.1)


async def test_token_bucket_refuses_beyond_the_horizon_and_takes_nothing() -> None:
    clock = FakeClock()
    b = MemoryBackend(clock=clock)
    await b.token_bucket("x", rate=2, burst=1, tokens=1, horizon=None)
    assert_grant(await b.token_bucket("x", rate=2, burst=1, tokens=1, horizon=0.4), False, 0.5)
    assert_grant(await b.token_bucket("x", rate=2, burst=1, tokens=1, horizon=0.5), True, 0.5)


async def test_token_bucket_refills_to_the_burst_and_no_more() -> None:
    clock = FakeClock()
    b = MemoryBackend(clock=clock)
    await b.token_bucket("x", rate=10, burst=3, tokens=3, horizon=None)
    clock.advance(60)
    assert_grant(await b.token_bucket("x", rate=10, burst=3, tokens=3, horizon=0), True, 0)
    assert_grant(await b.token_bucket("x", rate=10, burst=3, tokens=1, horizon=0), False, 0.1)


async def test_sliding_window_is_exact_across_any_window() -> None:
    clock = FakeClock()
    b = MemoryBackend(clock=clock)
    assert_grant(await b.sliding_window("w", limit=3, window=1.0, tokens=2, horizon=None), True, 0)
    clock.advance(0.5)
    assert_grant(await b.sliding_window("w", limit=3, window=1.0, tokens=1, horizon=None), True, 0)
    # Full: the two tokens of t=0 leave at t=1 (0.5 s from now).
    assert_grant(await b.sliding_window("w", limit=3, window=1.0, tokens=2, horizon=0.4), False, 0.5)
    assert_grant(await b.sliding_window("w", limit=3, window=1.0, tokens=2, horizon=None), True, 0.5)
    # The next one waits for the token of t=0.5 (leaves at 1.5) and after the reservation.
    assert_grant(await b.sliding_window("w", limit=3, window=1.0, tokens=1, horizon=None), True, 1.0)


async def test_a_pause_delays_grants_and_is_never_shortened() -> None:
    clock = FakeClock()
    b = MemoryBackend(clock=clock)
    assert await b.pause("p", 2.0) == pytest.approx(2.0)
    assert await b.pause("p", 1.0) == pytest.approx(2.0)
    assert await b.paused_for("p") == pytest.approx(2.0)
    assert_grant(await b.token_bucket("p", rate=100, burst=5, tokens=1, horizon=None), True, 2.0)
    assert_grant(await b.sliding_window("p", limit=5, window=1, tokens=1, horizon=1.0), False, 2.0)
    clock.advance(2.5)
    assert await b.paused_for("p") == 0.0


async def test_a_pause_the_caller_knows_of_delays_the_grant() -> None:
    b = MemoryBackend(clock=FakeClock())
    grant = await b.token_bucket("k", rate=10, burst=5, tokens=1, horizon=None, paused_for=0.7)
    assert_grant(grant, True, 0.7)
    grant = await b.sliding_window("k", limit=5, window=1, tokens=1, horizon=0.5, paused_for=0.7)
    assert_grant(grant, False, 0.7)


async def test_names_and_prefixes_keep_limits_apart() -> None:
    clock = FakeClock()
    one, other = MemoryBackend(clock=clock), MemoryBackend("other", clock=clock)
    await one.token_bucket("a", rate=1, burst=1, tokens=1, horizon=None)
    assert_grant(await one.token_bucket("b", rate=1, burst=1, tokens=1, horizon=0), True, 0)
    assert_grant(await other.token_bucket("a", rate=1, burst=1, tokens=1, horizon=0), True, 0)
    assert one.key("limiter", "a", "bucket") == "{httpx-resilience:limiter:a}:bucket"
    assert other.key("breaker", "b") == "{other:breaker:b}"


async def test_idle_state_expires_like_a_redis_key() -> None:
    clock = FakeClock()
    b = MemoryBackend(clock=clock)
    for i in range(600):  # more than one sweep's worth of calls
        await b.token_bucket(f"k{i}", rate=1000, burst=1, tokens=1, horizon=None)
        clock.advance(0.01)
    assert "keys=" in repr(b)
    assert len(b._state) < 600  # the buckets full again were swept


def test_memory_backend_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError) as err:
        MemoryBackend("bad{prefix}")
    assert err.value.field == "prefix"
    with pytest.raises(ConfigurationError) as err:
        MemoryBackend(fail_mode="maybe")  # type: ignore[arg-type]
    assert err.value.field == "fail_mode"
    assert "'local'" in str(err.value)


async def test_memory_backend_runs_no_scripts() -> None:
    with pytest.raises(NotImplementedError):
        await MemoryBackend().run("token_bucket", ["k"], [])


# -- fail_mode ----------------------------------------------------------------------------


def test_on_backend_down_follows_the_fail_mode() -> None:
    down = BackendDown("redis://127.0.0.1:1/0", "{p:limiter:x}:bucket", "refused")
    assert on_backend_down("local", down) == "local"
    assert on_backend_down("open", down) == "open"
    with pytest.raises(SharedStateUnavailableError) as err:
        on_backend_down("closed", down)
    text = str(err.value)
    assert "redis://127.0.0.1:1/0" in text and "{p:limiter:x}:bucket" in text
    assert "unreachable" in text and "fail_mode='local'" in text
    assert err.value.key == "{p:limiter:x}:bucket"


class DownBackend(SharedBackend):
    """A backend that is always down (as RedisBackend in fallback)."""

    def __init__(self, fail_mode: Any = "local") -> None:
        self.prefix = "down"
        self.fail_mode = fail_mode
        self.calls = 0

    def describe(self) -> str:
        return "redis://down:6379/0"

    def _down(self, name: str) -> BackendDown:
        self.calls += 1
        return BackendDown(self.describe(), self.key("limiter", name), "refused")

    async def token_bucket(self, name: str, **kw: Any) -> Grant:  # type: ignore[override]
        raise self._down(name)

    async def sliding_window(self, name: str, **kw: Any) -> Grant:  # type: ignore[override]
        raise self._down(name)

    async def pause(self, name: str, seconds: float) -> float:
        raise self._down(name)

    async def paused_for(self, name: str) -> float:
        raise self._down(name)


async def test_fail_mode_local_waits_on_the_in_process_state() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(10, 1, backend=DownBackend("local"), clock=clock)
    assert await limiter.acquire() == 0.0
    assert await limiter.acquire() == pytest.approx(0.1)
    assert clock.sleeps == [pytest.approx(0.1)]


async def test_fail_mode_local_keeps_max_wait() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(1, 1.0, backend=DownBackend(), clock=clock, max_wait=0.5)
    await limiter.acquire()
    with pytest.raises(RateLimiterTimeout):
        await limiter.acquire()


async def test_fail_mode_open_grants_at_once() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(1, 1, backend=DownBackend("open"), clock=clock)
    waits = [await limiter.acquire() for _ in range(5)]
    assert waits == [0.0] * 5 and clock.sleeps == []


async def test_fail_mode_closed_refuses_with_the_typed_error() -> None:
    limiter = TokenBucketRateLimiter(1, 1, backend=DownBackend("closed"), name="api")
    with pytest.raises(SharedStateUnavailableError) as err:
        await limiter.acquire()
    assert "{down:limiter:api}" in str(err.value)


# -- a limiter on a shared backend ---------------------------------------------------------


async def test_two_limiters_on_one_backend_share_one_limit() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    a = TokenBucketRateLimiter(10, 1, backend=backend, clock=clock)
    b = TokenBucketRateLimiter(10, 1, backend=backend, clock=clock)
    assert a.name == b.name == "token-bucket:10:1"
    assert await a.acquire() == 0.0
    assert await b.acquire() == pytest.approx(0.1)  # a's token was the shared one
    c = TokenBucketRateLimiter(10, 1, backend=backend, clock=clock, name="other")
    assert await c.acquire() == 0.0


async def test_a_shared_limiter_refuses_past_max_wait_without_sleeping() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(
        2, 1.0, backend=MemoryBackend(clock=clock), clock=clock, max_wait=0.5
    )
    await limiter.acquire(2)
    with pytest.raises(RateLimiterTimeout) as err:
        await limiter.acquire()
    assert err.value.needed == pytest.approx(1.0)
    assert clock.sleeps == []


def test_try_acquire_on_a_shared_limiter_sends_the_caller_to_acquire() -> None:
    limiter = TokenBucketRateLimiter(100, 10, backend=MemoryBackend())
    assert limiter.try_acquire() is False
    assert limiter.tokens == 10  # nothing taken locally


async def test_a_pause_applies_at_once_and_is_shared() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    a = TokenBucketRateLimiter(100, 5, backend=backend, clock=clock)
    b = TokenBucketRateLimiter(100, 5, backend=backend, clock=clock)
    a.pause(2.0)
    assert a.paused_for == pytest.approx(2.0)
    assert a._shared is not None
    await a._shared.drain()
    assert await backend.paused_for(a.name or "") == pytest.approx(2.0)
    assert await b.acquire() == pytest.approx(2.0)  # b learns of it from the backend


async def test_a_pause_larger_than_max_wait_refuses_without_a_round_trip() -> None:
    backend = DownBackend("closed")  # any call would raise
    limiter = TokenBucketRateLimiter(10, 1, backend=backend, max_wait=1.0, clock=FakeClock())
    limiter._paused_until = limiter._clock.monotonic() + 5.0
    with pytest.raises(RateLimiterTimeout):
        await limiter.acquire()
    assert backend.calls == 0


async def test_a_pause_learned_while_sleeping_is_waited_out() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    limiter = TokenBucketRateLimiter(10, 1, backend=backend, clock=clock)
    await limiter.acquire()

    real_sleep = clock.sleep

    async def sleep_then_pause(seconds: float) -> None:
        await real_sleep(seconds)
        if len(clock.sleeps) == 1:
            limiter._paused_until = clock.monotonic() + 1.0  # a 429 seen meanwhile

    clock.sleep = sleep_then_pause  # type: ignore[method-assign]
    assert await limiter.acquire() == pytest.approx(1.1)


async def test_a_pause_learned_while_sleeping_past_max_wait_refuses() -> None:
    clock = FakeClock()
    limiter = TokenBucketRateLimiter(
        10, 1, backend=MemoryBackend(clock=clock), clock=clock, max_wait=0.5
    )
    await limiter.acquire()
    real_sleep = clock.sleep

    async def sleep_then_pause(seconds: float) -> None:
        await real_sleep(seconds)
        limiter._paused_until = clock.monotonic() + 1.0

    clock.sleep = sleep_then_pause  # type: ignore[method-assign]
    with pytest.raises(RateLimiterTimeout):
        await limiter.acquire()


def test_a_pause_without_a_running_loop_stays_local() -> None:
    backend = MemoryBackend()
    limiter = TokenBucketRateLimiter(10, 1, backend=backend)
    limiter.pause(1.0)
    assert limiter.paused_for > 0.5
    assert limiter._shared is not None and not limiter._shared._tasks


async def test_a_pause_that_cannot_be_shared_holds_locally(caplog: pytest.LogCaptureFixture) -> None:
    limiter = TokenBucketRateLimiter(10, 1, backend=DownBackend("closed"))
    with caplog.at_level(logging.DEBUG, "httpx_resilience.limiter"):
        limiter.pause(1.0)
        assert limiter._shared is not None
        await limiter._shared.drain()
    assert limiter.paused_for > 0.5
    assert "not shared" in caplog.text


async def test_per_key_children_share_the_backend_under_their_own_names() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    limiter = SlidingWindowRateLimiter(1, 1.0, backend=backend, clock=clock, scope="host", name="api")
    one = limiter.for_key("a.example")
    two = limiter.for_key("b.example")
    assert one.name == "api/a.example" and two.name == "api/b.example"  # type: ignore[attr-defined]
    assert await one.acquire() == 0.0
    assert await two.acquire() == 0.0  # separate limits
    again = SlidingWindowRateLimiter(1, 1.0, backend=backend, clock=clock, scope="host", name="api")
    assert await again.for_key("a.example").acquire() == pytest.approx(1.0)
    assert "backend=memory" in repr(one)


async def test_the_testing_switch_grants_a_shared_limiter_at_once() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    limiter = TokenBucketRateLimiter(1, 1, backend=backend, clock=clock)
    down = TokenBucketRateLimiter(1, 1, backend=DownBackend("closed"), clock=clock)
    with testing_mode():
        waits = [await limiter.acquire() for _ in range(3)] + [await down.acquire()]
    assert waits == [0.0] * 4 and clock.sleeps == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"backend": object()}, "backend"), ({"backend": MemoryBackend(), "name": ""}, "name"),
     ({"name": "x"}, "backend")],
)
def test_backend_and_name_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        TokenBucketRateLimiter(1, 1, **kwargs)
    assert err.value.field == field


