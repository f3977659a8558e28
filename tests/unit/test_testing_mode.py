"""The testing switch: zero waits and capped attempts in the retry decision and the
generic helpers; process-wide (set_testing, any thread) or per task (testing_mode)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from httpx_resilience import RetryPolicy
from httpx_resilience.clock import SystemClock
from httpx_resilience.exceptions import ConfigurationError, RateLimitError
from httpx_resilience.pipeline._decision import RetryDecision, decide_retry
from httpx_resilience.policies._testing_mode import (
    TestingMode,
    active,
    cap_attempts,
    set_testing,
    testing_mode,
)
from httpx_resilience.policies.budget import RetryBudget
from httpx_resilience.policies.generic import (
    RetryStats,
    retry_async,
    with_api_retry,
    with_network_retry,
    with_retry,
)
from httpx_resilience.testing.clock import FakeClock

POLICY = RetryPolicy(max_attempts=4, backoff_factor=10.0, jitter="none", max_delay=60)


@pytest.fixture(autouse=True)
def switched_off() -> Iterator[None]:
    """Every test starts and ends with the process-wide switch off."""
    set_testing(False)
    yield
    set_testing(False)


class CountingClock(SystemClock):
    """The real clock, counting what it is asked to sleep (a sleep it is never asked
    for is proven absent without timing anything)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


class Failing:
    """An async callable that raises ``error`` on every call and counts the calls."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        raise self.error


def decide(attempt: int, *, server_delay: float | None = None, now: float = 100.0,
           deadline: float | None = None, budget_left: float | None = None) -> RetryDecision:
    return decide_retry(
        POLICY, attempt, server_delay=server_delay, previous_delay=None, now=now,
        deadline=deadline, budget_left=budget_left, rng=random.Random(0),
    )


# -- the switch itself ------------------------------------------------------------------


def test_off_by_default_and_on_for_the_process() -> None:
    """Off unless set; set_testing(True) holds for the process until set_testing(False)."""
    assert active() is None and cap_attempts(7) == 7
    set_testing(True, attempts=3)
    assert active() == TestingMode(3) and cap_attempts(7) == 3 and cap_attempts(2) == 2
    set_testing(False)
    assert active() is None


def test_testing_mode_is_undone_on_exit_and_overrides_the_process_switch() -> None:
    """testing_mode() on or off wins over set_testing inside the block only."""
    set_testing(True, attempts=5)
    with testing_mode(False) as mode:
        assert mode is None and active() is None
        with testing_mode(attempts=2):
            assert active() == TestingMode(2)
        assert active() is None
    assert active() == TestingMode(5)


def test_set_testing_as_a_context_manager_restores_the_previous_setting() -> None:
    """with set_testing(...): nested blocks unwind in order; a plain call needs no exit."""
    set_testing(True, attempts=4)
    with set_testing(True, attempts=2):
        assert active() == TestingMode(2)
        with set_testing(False):
            assert active() is None
        assert active() == TestingMode(2)
    assert active() == TestingMode(4)


@pytest.mark.parametrize("attempts", [0, -1, 1.5, True, "2"])
def test_bad_attempts_are_a_configuration_error(attempts: object) -> None:
    """attempts must be an int >= 1; the error names the field."""
    with pytest.raises(ConfigurationError, match="attempts must be an int >= 1") as info:
        set_testing(True, attempts=attempts)  # type: ignore[arg-type]
    assert info.value.field == "attempts"
    with pytest.raises(ConfigurationError), testing_mode(attempts=attempts):  # type: ignore[arg-type]
        pass  # pragma: no cover
    assert active() is None


def test_set_testing_from_another_thread_applies_here() -> None:
    """The process-wide switch is shared by every thread (a lock, not a thread-local)."""
    worker = threading.Thread(target=set_testing, args=(True,), kwargs={"attempts": 2})
    worker.start()
    worker.join()
    assert active() == TestingMode(2)
    assert decide(2).stop == "attempts"


# -- the pipeline's retry decision ------------------------------------------------------


def test_decision_off_keeps_the_backoff_and_retry_after() -> None:
    """Without the switch: 10 s of backoff, 30 s of Retry-After, four attempts."""
    assert decide(1) == RetryDecision(10.0)
    assert decide(1, server_delay=30.0) == RetryDecision(30.0)
    assert decide(3).retry and decide(4).stop == "attempts"


def test_decision_in_testing_mode_retries_at_once() -> None:
    """With the switch on, backoff and Retry-After are both zero."""
    with testing_mode(attempts=4):
        assert decide(1) == RetryDecision(0.0)
        assert decide(3) == RetryDecision(0.0)
        assert decide(1, server_delay=30.0) == RetryDecision(0.0)


def test_decision_caps_attempts_never_raises_them() -> None:
    """attempts=2 stops after the second attempt; attempts=9 keeps the policy's four."""
    with testing_mode(attempts=2):
        assert decide(1).retry
        assert decide(2).stop == "attempts"
    with testing_mode():  # the default: one attempt, no retry at all
        assert decide(1).stop == "attempts"
    with testing_mode(attempts=9):
        assert decide(3).retry and decide(4).stop == "attempts"


def test_decision_keeps_what_is_not_a_wait() -> None:
    """A Retry-After beyond max_delay still ends the retries, the budget still counts,
    and only a deadline already passed stops a zero-delay retry."""
    with testing_mode(attempts=4):
        assert decide(1, server_delay=3600.0).stop == "retry_after_too_long"
        assert decide(1, budget_left=0.5).stop == "budget"
        assert decide(1, now=100.0, deadline=101.0) == RetryDecision(0.0)  # 10 s would pass it
        assert decide(1, now=101.0, deadline=101.0).stop == "deadline"
    assert decide(1, now=100.0, deadline=101.0).stop == "deadline"


@given(
    max_attempts=st.integers(1, 8),
    cap=st.integers(1, 8),
    attempt=st.integers(1, 8),
    server_delay=st.none() | st.floats(0, 120),
    budget_left=st.none() | st.floats(0, 3),
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
)
def test_decision_invariants_in_testing_mode(
    max_attempts: int, cap: int, attempt: int, server_delay: float | None,
    budget_left: float | None, jitter: str,
) -> None:
    """For any policy and progress: a retry is due after 0 s; "attempts" stops exactly at
    min(cap, max_attempts); the other reasons are those of production."""
    policy = RetryPolicy(max_attempts=max_attempts, backoff_factor=10.0, jitter=jitter,  # type: ignore[arg-type]
                         max_delay=60.0)

    def decide_with(mode: bool) -> RetryDecision:
        with testing_mode(mode, attempts=cap):
            return decide_retry(
                policy, attempt, server_delay=server_delay, previous_delay=None, now=0.0,
                deadline=None, budget_left=budget_left, rng=random.Random(1),
            )

    on, off = decide_with(True), decide_with(False)
    assert (on.stop == "attempts") == (attempt >= min(cap, max_attempts))
    if on.retry:
        assert on.delay == 0.0
    if on.stop not in (None, "attempts"):
        assert on.stop == off.stop  # Retry-After beyond max_delay, the budget: unchanged
    if off.retry and attempt < cap:
        assert on.retry  # the switch never stops what production would retry, within its cap


async def test_concurrent_tasks_see_their_own_mode() -> None:
    """A task inside testing_mode() and one outside decide differently at the same time."""
    inside_entered = asyncio.Event()
    outside_done = asyncio.Event()

    async def inside() -> RetryDecision:
        with testing_mode(attempts=4):
            inside_entered.set()
            await outside_done.wait()  # still inside the block while the other decides
            return decide(1)

    async def outside() -> RetryDecision:
        await inside_entered.wait()
        try:
            return decide(1)
        finally:
            outside_done.set()

    got_in, got_out = await asyncio.gather(inside(), outside())
    assert got_in == RetryDecision(0.0) and got_out == RetryDecision(10.0)


# -- the generic helpers ----------------------------------------------------------------


async def test_retry_async_never_asks_a_real_clock_to_sleep() -> None:
    """retry_async with a 10 s delay on a real clock: two attempts, no sleep requested."""
    clock = CountingClock()
    f = Failing(ConnectionError("down"))
    stats = RetryStats()
    set_testing(True, attempts=2)
    with pytest.raises(ConnectionError) as info:
        await retry_async(f, max_attempts=5, delay=10.0, clock=clock, stats=stats)
    assert f.calls == 2 and clock.sleeps == []
    assert (stats.attempts, stats.retries, stats.exhausted) == (2, 1, 1)
    assert info.value.__notes__ == ["Failing: gave up after 2 attempt(s) (all 2 attempts failed)"]


async def test_retry_async_ignores_a_servers_retry_after_in_testing_mode() -> None:
    """A RateLimitError asking for 30 s is retried at once."""
    clock = FakeClock()
    f = Failing(RateLimitError(429, "slow down", retry_after=30.0))
    with testing_mode(attempts=3), pytest.raises(RateLimitError):
        await retry_async(f, max_attempts=3, clock=clock)
    assert f.calls == 3 and clock.sleeps == []
    f.calls = 0
    with pytest.raises(RateLimitError):  # off again: the server's 30 s are slept, twice
        await retry_async(f, max_attempts=3, clock=clock)
    assert f.calls == 3 and clock.sleeps == [30.0, 30.0]


async def test_decorators_cap_attempts_and_skip_sleeps() -> None:
    """with_retry, with_network_retry and with_api_retry: capped, no sleep."""
    clock = FakeClock()
    net = Failing(httpx.ConnectError("refused"))
    api = Failing(httpx.HTTPStatusError(
        "503", request=httpx.Request("GET", "http://x"),
        response=httpx.Response(503, headers={"Retry-After": "30"}),
    ))
    plain = Failing(ValueError("no"))
    decorated = [
        with_retry(max_attempts=6, delay=10.0, clock=clock)(plain),
        with_network_retry(max_attempts=6, delay=10.0, clock=clock)(net),
        with_api_retry(max_attempts=6, delay=10.0, clock=clock)(api),
    ]
    with testing_mode(attempts=3):
        for call in decorated:
            with pytest.raises(Exception):  # noqa: B017 - each its own error, checked below
                await call()
    assert (plain.calls, net.calls, api.calls) == (3, 3, 3)
    assert clock.sleeps == []


async def test_budget_still_stops_retries_in_testing_mode() -> None:
    """The switch removes waits, not the retry budget: a spent budget stops at once."""
    clock = FakeClock()
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, clock=clock)
    f = Failing(ConnectionError("x"))
    with testing_mode(attempts=5), pytest.raises(ConnectionError) as info:
        await retry_async(f, max_attempts=5, budget=budget, clock=clock)
    assert f.calls == 1 and "retry budget is spent" in info.value.__notes__[0]
