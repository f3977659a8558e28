"""Unit tests of the rate limiters: rates, fairness, max_wait, cancellation, pacing."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from typing import Any

import httpx
import pytest

from httpx_resilience.exceptions import ConfigurationError, RateLimiterTimeout
from httpx_resilience.policies.limiter import (
    RateLimiter,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
)
from httpx_resilience.testing.clock import FakeClock


class SteppedClock:
    """A clock whose sleeps end only when the test advances time past them."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._ids), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._timers and self._timers[0][0] <= target:
            at, _, fut = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            if not fut.done():
                fut.set_result(None)
            await settle()
        self.now = target
        await settle()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def grants(limiter: RateLimiter, clock: Any, n: int, tokens: int = 1) -> list[float]:
    """Run n concurrent acquires and return the clock time of each grant, in grant order."""
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire(tokens)
        times.append(clock.monotonic())

    await asyncio.gather(*(one() for _ in range(n)))
    return times


def response(headers: dict[str, str], status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers=headers)


# -- token bucket -----------------------------------------------------------------------


async def test_bucket_fast_path_grants_burst_at_once() -> None:
    """A full bucket grants burst tokens without waiting and reports 0 s waited."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(10, 5, clock=clock)
    assert [await lim.acquire() for _ in range(5)] == [0.0] * 5
    assert clock.sleeps == [] and lim.tokens == pytest.approx(0.0)
    assert lim.is_configured() and lim.rate == 10 and lim.burst == 5


async def test_bucket_rate_never_exceeded() -> None:
    """In every interval T the bucket grants at most burst + rate*T tokens."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(5, 3, clock=clock)
    times = await grants(lim, clock, 40)
    assert times == sorted(times)
    assert times[2] == 1000.0 and times[3] > 1000.0  # the burst, then the rate
    for i, j in itertools.combinations(range(len(times)), 2):
        assert j - i + 1 <= 3 + 5 * (times[j] - times[i]) + 1e-6
    assert times[-1] == pytest.approx(1000.0 + 37 / 5)


async def test_bucket_waits_return_seconds_waited() -> None:
    """acquire() returns how long it waited."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(2, 1, clock=clock)
    assert await lim.acquire() == 0.0
    assert await lim.acquire() == pytest.approx(0.5)


async def test_bucket_default_burst() -> None:
    """Without burst the bucket holds max(1, int(rate)) tokens."""
    assert TokenBucketRateLimiter(10).burst == 10
    assert TokenBucketRateLimiter(0.5).burst == 1


async def test_bucket_fifo_big_request_not_overtaken() -> None:
    """A later small request never overtakes an earlier big one."""
    clock = SteppedClock()
    lim = TokenBucketRateLimiter(1, 3, clock=clock)
    await lim.acquire(3)  # empty the bucket
    order: list[str] = []

    async def take(name: str, n: int) -> None:
        await lim.acquire(n)
        order.append(name)

    big = asyncio.create_task(take("big", 3))
    await settle()
    small = asyncio.create_task(take("small", 1))
    await settle()
    await clock.advance(1.0)  # one token: enough for small, but big is first
    assert order == []
    await clock.advance(2.0)
    assert order == ["big"]
    await clock.advance(1.0)
    assert order == ["big", "small"]
    await asyncio.gather(big, small)


async def test_bucket_weighted_acquire() -> None:
    """A weighted acquire spends that many tokens."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(2, 4, clock=clock)
    assert await lim.acquire(3) == 0.0
    assert await lim.acquire(2) == pytest.approx(0.5)


async def test_bucket_max_wait_refuses_up_front_without_leaking() -> None:
    """A request that would wait past max_wait is refused at once and takes no tokens."""
    clock = SteppedClock()
    lim = TokenBucketRateLimiter(1, 1, max_wait=3.5, clock=clock)
    await lim.acquire()
    tasks = [asyncio.create_task(lim.acquire()) for _ in range(4)]  # due at 1, 2, 3, 4 s
    await settle()
    assert clock.now == 0.0 and tasks[3].done()
    err = tasks[3].exception()
    assert isinstance(err, RateLimiterTimeout)
    assert err.waited == 0.0 and err.needed == pytest.approx(4.0)
    assert "max_wait" in str(err)
    assert lim.waiters == 3
    await clock.advance(3.0)
    assert [await t for t in tasks[:3]] == [
        pytest.approx(1.0),
        pytest.approx(2.0),
        pytest.approx(3.0),
    ]
    assert lim.waiters == 0
    await clock.advance(1.0)
    assert await lim.acquire() == 0.0  # the refused request took nothing


async def test_bucket_max_wait_zero_never_waits() -> None:
    """With max_wait=0 an empty bucket refuses immediately."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(1, 1, max_wait=0, clock=clock)
    await lim.acquire()
    with pytest.raises(RateLimiterTimeout):
        await lim.acquire()
    assert clock.sleeps == []
    clock.advance(1.0)
    assert await lim.acquire() == 0.0  # the refusal leaked nothing


async def test_cancelled_waiter_leaks_nothing_and_does_not_block() -> None:
    """Cancelling queued waiters (head or not) leaks no tokens and the queue moves on."""
    clock = SteppedClock()
    lim = TokenBucketRateLimiter(1, 1, clock=clock)
    await lim.acquire()
    done: list[str] = []

    async def take(name: str) -> None:
        await lim.acquire()
        done.append(name)

    head = asyncio.create_task(take("head"))
    middle = asyncio.create_task(take("middle"))
    tail = asyncio.create_task(take("tail"))
    await settle()
    assert lim.waiters == 3
    middle.cancel()
    head.cancel()
    await settle()
    assert lim.waiters == 1
    await clock.advance(1.0)
    assert done == ["tail"]
    await tail
    for t in (head, middle):
        with pytest.raises(asyncio.CancelledError):
            await t
    assert lim.waiters == 0
    await clock.advance(1.0)
    assert lim.tokens == pytest.approx(1.0)  # nothing leaked
    assert await lim.acquire() == 0.0


async def test_tokens_above_capacity_or_below_one_are_errors() -> None:
    """Asking for more than the capacity (or < 1 token) is a ConfigurationError, never a hang."""
    lim = TokenBucketRateLimiter(1, 3, clock=FakeClock())
    with pytest.raises(ConfigurationError, match="at most 3") as info:
        await lim.acquire(4)
    assert info.value.field == "tokens"
    with pytest.raises(ConfigurationError):
        await lim.acquire(0)
    with pytest.raises(ConfigurationError):
        await lim.acquire(1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        await lim.acquire(True)
    sw = SlidingWindowRateLimiter(2, 1.0, clock=FakeClock())
    with pytest.raises(ConfigurationError, match="at most 2"):
        await sw.acquire(3)


async def test_pause_holds_grants() -> None:
    """pause() grants nothing until it ends, even with tokens in the bucket; it never shortens."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(10, 10, clock=clock)
    lim.pause(2.0)
    lim.pause(1.0)  # shorter: ignored
    assert lim.paused_for == pytest.approx(2.0)
    assert "paused_for=2.0s" in repr(lim)
    assert await lim.acquire() == pytest.approx(2.0)
    assert await lim.acquire() == 0.0
    with pytest.raises(ConfigurationError):
        lim.pause(-1)
    lim.pause(0)
    assert lim.paused_for == 0.0


async def test_pause_refuses_waiters_it_pushes_past_max_wait() -> None:
    """Queued waiters whose max_wait a new pause exceeds are refused at once."""
    clock = SteppedClock()
    lim = TokenBucketRateLimiter(1, 1, max_wait=3.0, clock=clock)
    await lim.acquire()
    first = asyncio.create_task(lim.acquire())  # head: due at 1 s
    second = asyncio.create_task(lim.acquire())  # due at 2 s
    await settle()
    lim.pause(2.5)  # first: 2.5 s (fits), second: 3.5 s > 3 s
    await settle()
    assert second.done()
    err = second.exception()
    assert isinstance(err, RateLimiterTimeout)
    assert lim.waiters == 1
    await clock.advance(1.0)  # first wakes, sees the pause, sleeps again
    assert not first.done()
    await clock.advance(1.5)
    assert await first == pytest.approx(2.5)


async def test_pause_dooms_sleeping_head() -> None:
    """A sleeping head that a pause pushes past max_wait is refused when it wakes."""
    clock = SteppedClock()
    lim = TokenBucketRateLimiter(1, 1, max_wait=2.0, clock=clock)
    await lim.acquire()
    head = asyncio.create_task(lim.acquire())
    tail = asyncio.create_task(lim.acquire())
    await settle()
    lim.pause(5.0)
    await settle()
    assert tail.done() and isinstance(tail.exception(), RateLimiterTimeout)
    await clock.advance(1.0)
    with pytest.raises(RateLimiterTimeout):
        await head
    assert lim.waiters == 0
    await clock.advance(4.0)
    assert await lim.acquire() == 0.0  # nothing leaked


# -- sliding window ---------------------------------------------------------------------


def assert_window(
    times: list[float], limit: int, window: float, weights: list[int] | None = None
) -> None:
    weights = weights or [1] * len(times)
    for start in times:
        inside = sum(
            w for t, w in zip(times, weights, strict=True) if start <= t < start + window - 1e-6
        )
        assert inside <= limit, (start, inside)


async def test_sliding_window_exact_in_every_window() -> None:
    """Never more than limit grants in any window of window seconds, not just aligned ones."""
    clock = FakeClock()
    lim = SlidingWindowRateLimiter(5, 1.0, clock=clock)
    times = await grants(lim, clock, 23)
    assert times[:5] == [1000.0] * 5
    assert_window(times, 5, 1.0)
    assert times[-1] == pytest.approx(1004.0)


async def test_sliding_window_staggered_traffic() -> None:
    """Grants spread over time free their places exactly one window later."""
    clock = FakeClock()
    lim = SlidingWindowRateLimiter(3, 10.0, clock=clock)
    times: list[float] = []
    for gap in (0.0, 4.0, 3.0, 0.0, 1.0, 0.5, 0.0):
        clock.advance(gap)
        await lim.acquire()
        times.append(clock.monotonic())
    assert_window(times, 3, 10.0)
    assert times[3] == pytest.approx(1010.0)  # waited for the first grant to expire
    assert lim.used == 3


async def test_sliding_window_weighted_and_fifo() -> None:
    """Weighted acquires are exact too and are served first-in-first-out."""
    clock = FakeClock()
    lim = SlidingWindowRateLimiter(4, 2.0, clock=clock)
    order: list[tuple[int, float]] = []

    async def take(n: int) -> None:
        await lim.acquire(n)
        order.append((n, clock.monotonic()))

    await asyncio.gather(*(take(n) for n in (3, 2, 1, 4, 1)))
    assert [n for n, _ in order] == [3, 2, 1, 4, 1]
    assert_window([t for _, t in order], 4, 2.0, [n for n, _ in order])


async def test_sliding_window_max_wait_up_front() -> None:
    """The sliding window predicts the grant time and refuses past max_wait without waiting."""
    clock = SteppedClock()
    lim = SlidingWindowRateLimiter(2, 1.0, max_wait=1.0, clock=clock)
    tasks = [asyncio.create_task(lim.acquire()) for _ in range(7)]
    await settle()
    refused = [t.exception() for t in tasks if t.done() and t.exception() is not None]
    assert len(refused) == 3 and clock.now == 0.0
    assert isinstance(refused[0], RateLimiterTimeout)
    assert refused[0].needed == pytest.approx(2.0)
    await clock.advance(1.0)
    assert [t.result() for t in tasks[:4]] == [0.0, 0.0, 1.0, 1.0]


async def test_sliding_window_pause_and_repr() -> None:
    """pause() applies to the sliding window and repr shows its live state."""
    clock = SteppedClock()
    lim = SlidingWindowRateLimiter(2, 1.0, max_wait=5.0, clock=clock)
    await lim.acquire()
    await lim.acquire()
    queued = [asyncio.create_task(lim.acquire()) for _ in range(3)]
    await settle()
    assert repr(lim) == "SlidingWindowRateLimiter(limit=2, window=1s, used=2, waiters=3)"
    lim.pause(4.5)  # grants at 4.5, 4.5, 5.5 > 5: the third is refused
    await settle()
    assert isinstance(queued[2].exception(), RateLimiterTimeout)
    await clock.advance(5.0)
    assert [await t for t in queued[:2]] == [pytest.approx(4.5)] * 2
    assert lim.limit == 2 and lim.window == 1.0


# -- header pacing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}, 7.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(1_700_000_000 + 12)}, 12.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str((1_700_000_000 + 3) * 1000)}, 3.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.5"}, 2.5),
        ({"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "7"}, 0.0),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "9"}, 9.0),
        ({"RateLimit": "limit=10, remaining=0, reset=30"}, 30.0),
        ({"RateLimit": "limit=10, remaining=3, reset=30"}, 0.0),
        ({"RateLimit": '"default";r=0;t=20'}, 20.0),
        ({"RateLimit": '"default";r=5;t=20, "burst";r=0;t=4'}, 4.0),
        ({"RateLimit": '"day";r=0', "RateLimit-Policy": '"day";q=1000;w=60'}, 60.0),
        ({"RateLimit": '"day";r=0'}, 0.0),
        ({"X-RateLimit-Remaining": "zero", "X-RateLimit-Reset": "7"}, 0.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"}, 0.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "nan"}, 0.0),
        ({}, 0.0),
    ],
)
def test_header_pacing(headers: dict[str, str], expected: float) -> None:
    """With header_pacing, 'none remaining' headers pause the limiter until the reset."""
    clock = FakeClock(start=0.0, wall_start=1_700_000_000.0)
    lim = TokenBucketRateLimiter(10, header_pacing=True, clock=clock)
    lim.observe_response(response(headers))
    assert lim.paused_for == pytest.approx(expected)


def test_header_pacing_off_by_default() -> None:
    """Without header_pacing, observe_response is a no-op."""
    lim = SlidingWindowRateLimiter(10, 1.0, clock=FakeClock())
    lim.observe_response(response({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}))
    assert lim.paused_for == 0.0


def test_header_pacing_ignores_absurd_reset(caplog: pytest.LogCaptureFixture) -> None:
    """A reset more than a day away is logged and ignored rather than freezing the client."""
    lim = TokenBucketRateLimiter(10, header_pacing=True, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.limiter"):
        lim.observe_response(response({"RateLimit-Remaining": "0", "RateLimit-Reset": "999999"}))
    assert lim.paused_for == 0.0
    assert "ignoring" in caplog.text


@pytest.mark.parametrize("make", [
    lambda **kw: TokenBucketRateLimiter(10, **kw),
    lambda **kw: SlidingWindowRateLimiter(10, 1.0, **kw),
])
def test_a_pause_is_never_longer_than_max_pause(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Retry-After: 99999999 (or a rate-limit header 23 h away) pauses for max_pause at most."""
    clock = FakeClock(start=0.0, wall_start=1_700_000_000.0)
    lim = make(clock=clock, header_pacing=True)
    assert lim.max_pause == 60.0
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.limiter"):
        lim.pause(99999999)
    assert lim.paused_for == 60.0 and "cut to max_pause=60" in caplog.text
    lim.pause(5)  # pauses never shorten one another
    assert lim.paused_for == 60.0
    short = make(clock=clock, header_pacing=True, max_pause=2.5, scope="host")
    short.observe_response(response({"RateLimit-Remaining": "0", "RateLimit-Reset": "82800"}))
    assert short.paused_for == 2.5
    child = short.for_key("a.test")
    assert child.max_pause == 2.5  # type: ignore[attr-defined]
    child.pause(1000)
    assert child.paused_for == 2.5
    off = make(clock=clock, max_pause=0)
    off.pause(30)
    assert off.paused_for == 0.0


# -- per-key children, validation, the ABC -------------------------------------------


async def test_host_scope_isolates_and_bounds_keys() -> None:
    """scope='host' gives each key its own bucket, in a bounded LRU preferring idle victims."""
    clock = FakeClock()
    lim = TokenBucketRateLimiter(1, 1, scope="host", max_keys=2, clock=clock)
    a = lim.for_key("a")
    assert lim.for_key("a") is a and a is not lim and a.for_key("zz") is a
    await a.acquire()
    b = lim.for_key("b")
    assert await b.acquire() == 0.0  # a's empty bucket does not affect b
    lim.for_key("a")  # a is now the most recently used; both are spent
    clock.advance(1.0)  # both refill: idle
    await lim.for_key("a").acquire()  # a busy again
    lim.for_key("c")  # evicts b, the idle one
    assert lim.for_key("a") is a
    assert "keys=2" in repr(lim)


async def test_host_scope_evicts_without_waiters_when_none_idle() -> None:
    """When no child is idle, one without waiters is evicted first, else the oldest."""
    clock = SteppedClock()
    lim = SlidingWindowRateLimiter(1, 10.0, scope="host", max_keys=2, clock=clock)
    a = lim.for_key("a")
    await a.acquire()
    waiting = [asyncio.create_task(a.acquire())]
    b = lim.for_key("b")
    await b.acquire()  # b: used, so not idle, but nobody waits on it
    assert lim.for_key("a") is a  # LRU order: b, a; neither is idle
    c = lim.for_key("c")  # evicts b: the least recently used without waiters
    assert lim.for_key("b") is not b  # b was the victim (this in turn evicts the idle c)
    assert lim.for_key("a") is a
    b2 = lim.for_key("b")
    await b2.acquire()
    waiting.append(asyncio.create_task(b2.acquire()))
    await settle()
    lim.for_key("d")  # a and b2 both have waiters: the least recently used (a) goes
    assert lim.for_key("b") is b2
    assert lim.for_key("a") is not a
    assert lim.for_key("c") is not c
    for t in waiting:
        t.cancel()
    await settle()


def test_global_scope_for_key_returns_self() -> None:
    """scope='global' shares one limiter for every key."""
    lim = SlidingWindowRateLimiter(1, 1.0)
    assert lim.for_key("a") is lim


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: TokenBucketRateLimiter(0), "rate"),
        (lambda: TokenBucketRateLimiter(float("inf")), "rate"),
        (lambda: TokenBucketRateLimiter(True), "rate"),
        (lambda: TokenBucketRateLimiter(1, 0), "burst"),
        (lambda: TokenBucketRateLimiter(1, max_wait=-1), "max_wait"),
        (lambda: TokenBucketRateLimiter(1, scope="proc"), "scope"),  # type: ignore[arg-type]
        (lambda: TokenBucketRateLimiter(1, max_keys=0), "max_keys"),
        (lambda: SlidingWindowRateLimiter(0, 1.0), "limit"),
        (lambda: SlidingWindowRateLimiter(1, 0), "window"),
        (lambda: TokenBucketRateLimiter(1, max_pause=-1), "max_pause"),
        (lambda: SlidingWindowRateLimiter(1, 1.0, max_pause=float("inf")), "max_pause"),
    ],
)
def test_validation_names_the_field(factory: Any, field: str) -> None:
    """Bad settings raise ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError) as info:
        factory()
    assert info.value.field == field


def test_repr_shows_live_state() -> None:
    """repr shows rate, burst, tokens and waiters."""
    lim = TokenBucketRateLimiter(2.5, 4, clock=FakeClock())
    assert repr(lim) == "TokenBucketRateLimiter(rate=2.5/s, burst=4, tokens=4.00, waiters=0)"
    assert lim.capacity == 4 and lim.max_wait is None


async def test_abc_defaults() -> None:
    """A minimal RateLimiter subclass gets harmless for_key, pause and observe_response."""

    class Unlimited(RateLimiter):
        async def acquire(self, tokens: int = 1) -> float:
            return 0.0

        def is_configured(self) -> bool:
            return False

    u = Unlimited()
    assert u.for_key("x") is u
    u.pause(5)
    u.observe_response(response({"X-RateLimit-Remaining": "0"}))
    assert await u.acquire() == 0.0 and not u.is_configured()
    with pytest.raises(TypeError):
        RateLimiter()  # type: ignore[abstract]


async def test_system_clock_default_works() -> None:
    """Without a clock, the limiter runs on the real clock (a tiny real wait)."""
    lim = TokenBucketRateLimiter(200, 1)
    await lim.acquire()
    waited = await lim.acquire()
    assert 0.0 < waited < 0.5


async def test_sliding_window_host_scope_repr_and_pause_skips_dead() -> None:
    """A paused, keyed sliding window shows it in repr; pause skips waiters already gone."""
    clock = SteppedClock()
    lim = SlidingWindowRateLimiter(1, 1.0, max_wait=10.0, scope="host", clock=clock)
    child = lim.for_key("h")
    assert isinstance(child, SlidingWindowRateLimiter)
    await child.acquire()
    head = asyncio.create_task(child.acquire())
    gone = asyncio.create_task(child.acquire())
    kept = asyncio.create_task(child.acquire())
    await settle()
    gone.cancel()
    await settle()
    assert child.waiters == 2
    child.pause(3.0)
    assert "paused_for=3.0s" in repr(child) and "keys=1" in repr(lim)
    await clock.advance(10.0)
    assert await head == pytest.approx(3.0)
    assert await kept == pytest.approx(4.0)


async def test_the_testing_switch_makes_every_limiter_wait_zero() -> None:
    from httpx_resilience.policies._testing_mode import testing_mode

    clock = FakeClock()
    bucket = TokenBucketRateLimiter(1, 1, clock=clock, max_wait=0.1)
    window = SlidingWindowRateLimiter(1, 60.0, clock=clock, max_wait=0)
    with testing_mode():
        waits = [await bucket.acquire() for _ in range(3)] + [await window.acquire() for _ in range(3)]
    assert waits == [0.0] * 6 and clock.sleeps == []
    with pytest.raises(RateLimiterTimeout):  # off again: the limits hold
        await window.acquire()
