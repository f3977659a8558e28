"""The token bucket limiter: ``rate`` tokens per second, bursts of up to ``burst``.

:class:`TokenBucket` is the arithmetic: a bucket refilled lazily from the
``now`` it is given, so it needs no timer of its own.
:class:`TokenBucketRateLimiter` puts it behind the queue, ``max_wait`` and
pauses of :class:`~httpx_resilience.policies.limiter._queue.QueuedLimiter`.
"""

from __future__ import annotations

from typing import Literal

from ...backends._contract import Grant, SharedBackend
from ...clock import SYSTEM_CLOCK, Clock
from ._allowance import Allowance, Schedule
from ._base import check_count, check_seconds
from ._queue import DEFAULT_MAX_PAUSE, QueuedLimiter

__all__ = ["TokenBucket", "TokenBucketRateLimiter"]


class _BucketSchedule(Schedule):
    __slots__ = ("_level", "_rate", "_start")

    def __init__(self, level: float, rate: float, start: float) -> None:
        self._level = level
        self._rate = rate
        self._start = start

    def grant_time(self, tokens: int) -> float:
        return self._start + max(0.0, tokens - self._level) / self._rate

    def commit(self, tokens: int, at: float) -> None:
        # Tokens accrue from `start`; a grant at `at` spends what accrued until then.
        self._level -= tokens


class TokenBucket(Allowance):
    """A bucket of ``capacity`` tokens, refilled at ``rate`` per second; it starts full.

    Args:
        rate: tokens added per second (> 0, already validated).
        capacity: the bucket's size (≥ 1, already validated).
        now: the time of creation, on the limiter's clock.
    """

    __slots__ = ("_tokens", "_updated", "capacity", "rate")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = float(capacity)
        self._updated = now

    def level(self, now: float) -> float:
        """Tokens in the bucket at ``now`` (without refilling it)."""
        return min(float(self.capacity), self._tokens + max(0.0, now - self._updated) * self.rate)

    def _refill(self, now: float) -> float:
        if now > self._updated:
            self._tokens = min(
                float(self.capacity), self._tokens + (now - self._updated) * self.rate
            )
            self._updated = now
        return self._tokens

    def try_take(self, tokens: int, now: float) -> bool:
        if self._refill(now) >= tokens:
            self._tokens -= tokens
            return True
        return False

    def wait_for(self, tokens: int, now: float) -> float:
        return (tokens - self._refill(now)) / self.rate

    def take(self, tokens: int, now: float) -> None:
        self._tokens = max(0.0, self._refill(now) - tokens)

    def schedule(self, now: float, start: float) -> Schedule:
        # While anyone waits the bucket never overflows (the head takes its
        # tokens as soon as they are there), so the level at `start` plus the
        # steady rate gives every grant time in closed form.
        return _BucketSchedule(self.level(start), self.rate, start)

    def quick_estimate(self, total: int, start: float) -> float | None:
        # O(1) instead of a walk over the queue.
        return start + max(0.0, total - self.level(start)) / self.rate

    def is_idle(self, now: float) -> bool:
        return self.level(now) >= self.capacity

    def describe(self, now: float) -> str:
        return f"rate={self.rate:g}/s, burst={self.capacity}, tokens={self.level(now):.2f}"


class TokenBucketRateLimiter(QueuedLimiter):
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    The bucket starts full, so up to ``burst`` requests go at once; after
    that, requests are granted at ``rate`` per second. In any interval of
    ``T`` seconds at most ``burst + rate * T`` tokens are granted.

    Args:
        rate: tokens added per second (> 0; 0.5 means one every two seconds).
        burst: the bucket's size, the most one ``acquire`` can ask for;
            by default ``max(1, int(rate))``.
        max_wait: the longest an ``acquire`` may wait; beyond it
            :class:`~httpx_resilience.RateLimiterTimeout` is raised up front.
            ``None`` waits as long as needed; ``0`` never waits.
        scope: ``"global"`` or ``"host"`` (a bucket per :meth:`for_key` key).
        max_keys: how many per-key buckets are kept with ``scope="host"``.
        header_pacing: whether :meth:`observe_response` pauses on
            rate-limit headers.
        clock: the time source; the system clock by default.
        max_pause: the longest a server can pause the limiter (``Retry-After``,
            rate-limit headers), in seconds; longer asks are cut to it.
        backend: shared state, e.g. a :class:`~httpx_resilience.RedisBackend`:
            one limit for every process using the same backend and ``name``.
            ``None`` (the default) keeps it in this process, on the fast path.
            With a backend each grant is one round trip (a wait is reserved
            by it, then slept); :meth:`try_acquire` answers ``False``; a pause
            is shared; per-key children are named ``<name>/<key>``.
        name: the limiter's name in ``backend`` (by default from its settings,
            so limiters with the same settings share one limit).

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        max_wait: float | None = None,
        scope: Literal["global", "host"] = "global",
        max_keys: int = 1024,
        header_pacing: bool = False,
        clock: Clock | None = None,
        max_pause: float = DEFAULT_MAX_PAUSE,
        backend: SharedBackend | None = None,
        name: str | None = None,
    ) -> None:
        rate = check_seconds(rate, "rate", allow_zero=False)
        if burst is None:
            burst = max(1, int(rate))
        check_count(burst, "burst", 1)
        clock = clock if clock is not None else SYSTEM_CLOCK
        self._bucket = TokenBucket(rate, burst, clock.monotonic())
        super().__init__(
            self._bucket,
            max_wait=max_wait,
            scope=scope,
            max_keys=max_keys,
            header_pacing=header_pacing,
            clock=clock,
            max_pause=max_pause,
            backend=backend,
            name=name,
        )

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._bucket.rate

    @property
    def burst(self) -> int:
        """The bucket's size."""
        return self._bucket.capacity

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now (without granting anything)."""
        return self._bucket.level(self._clock.monotonic())

    def _spawn(
        self, max_wait: float | None, header_pacing: bool, clock: Clock
    ) -> TokenBucketRateLimiter:
        bucket = self._bucket
        return TokenBucketRateLimiter(
            bucket.rate,
            bucket.capacity,
            max_wait=max_wait,
            header_pacing=header_pacing,
            clock=clock,
        )

    def _default_name(self) -> str:
        return f"token-bucket:{self._bucket.rate:g}:{self._bucket.capacity}"

    async def _take_shared(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant:
        b = self._bucket
        return await backend.token_bucket(
            name, rate=b.rate, burst=b.capacity, tokens=tokens, horizon=horizon, paused_for=paused
        )

    def _take_shared_sync(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant | None:
        b = self._bucket
        return backend.token_bucket_sync(
            name, rate=b.rate, burst=b.capacity, tokens=tokens, horizon=horizon, paused_for=paused
        )

    def __repr__(self) -> str:
        return self._describe("TokenBucketRateLimiter")
