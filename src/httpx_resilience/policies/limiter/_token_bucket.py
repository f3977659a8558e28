"""The token bucket limiter: ``rate`` tokens per second, bursts of up to ``burst``.

The bucket is refilled lazily from the injected clock on every look, so it
needs no timer of its own; queueing, ``max_wait`` and pauses come from
:class:`~httpx_resilience.policies.limiter._queue.QueuedLimiter`.
"""

from __future__ import annotations

from typing import Literal

from ...clock import Clock
from ._base import check_count, check_seconds
from ._queue import QueuedLimiter, Schedule

__all__ = ["TokenBucketRateLimiter"]


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
    ) -> None:
        rate = check_seconds(rate, "rate", allow_zero=False)
        if burst is None:
            burst = max(1, int(rate))
        check_count(burst, "burst", 1)
        super().__init__(
            burst,
            max_wait=max_wait,
            scope=scope,
            max_keys=max_keys,
            header_pacing=header_pacing,
            clock=clock,
        )
        self._rate = rate
        self._tokens = float(burst)
        self._updated = self._clock.monotonic()

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The bucket's size."""
        return self._capacity

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now (without granting anything)."""
        return self._level(self._clock.monotonic())

    def _level(self, now: float) -> float:
        return min(float(self._capacity), self._tokens + max(0.0, now - self._updated) * self._rate)

    def _refill(self, now: float) -> float:
        if now > self._updated:
            self._tokens = min(
                float(self._capacity), self._tokens + (now - self._updated) * self._rate
            )
            self._updated = now
        return self._tokens

    def _try_take(self, tokens: int, now: float) -> bool:
        if self._refill(now) >= tokens:
            self._tokens -= tokens
            return True
        return False

    def _wait_for(self, tokens: int, now: float) -> float:
        return (tokens - self._refill(now)) / self._rate

    def _take(self, tokens: int, now: float) -> None:
        self._tokens = max(0.0, self._refill(now) - tokens)

    def _schedule(self, now: float, start: float) -> Schedule:
        # While anyone waits the bucket never overflows (the head takes its
        # tokens as soon as they are there), so the level at `start` plus the
        # steady rate gives every grant time in closed form.
        return _BucketSchedule(self._level(start), self._rate, start)

    def _estimate(self, tokens: int, now: float) -> float:
        # O(1) instead of a walk over the queue.
        start = max(now, self._paused_until)
        level = self._level(start)
        return start + max(0.0, self._queued_tokens + tokens - level) / self._rate

    def _is_idle(self, now: float) -> bool:
        return not self._live and not self._is_paused(now) and self._level(now) >= self._capacity

    def _spawn(self) -> TokenBucketRateLimiter:
        return TokenBucketRateLimiter(
            self._rate,
            self._capacity,
            max_wait=self._max_wait,
            header_pacing=self._header_pacing,
            clock=self._clock,
        )

    def __repr__(self) -> str:
        now = self._clock.monotonic()
        text = (
            f"TokenBucketRateLimiter(rate={self._rate:g}/s, burst={self._capacity}, "
            f"tokens={self._level(now):.2f}, waiters={self._live}"
        )
        if self._is_paused(now):
            text += f", paused_for={self._paused_until - now:.1f}s"
        if self._children is not None:
            text += f", keys={len(self._children)}"
        return text + ")"
