"""The exact sliding-window limiter: never more than ``limit`` tokens in any ``window``.

It keeps a log of grant times, one entry per token, so the guarantee holds
for every window, not only aligned ones; queueing, ``max_wait`` and pauses
come from :class:`~httpx_resilience.policies.limiter._queue.QueuedLimiter`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Literal

from ...clock import Clock
from ._base import check_count, check_seconds
from ._queue import EPS, QueuedLimiter, Schedule

__all__ = ["SlidingWindowRateLimiter"]


class _LogSchedule(Schedule):
    __slots__ = ("_last", "_limit", "_log", "_window")

    def __init__(self, log: Iterable[float], limit: int, window: float, start: float) -> None:
        self._log = deque(log)
        self._limit = limit
        self._window = window
        self._last = start

    def grant_time(self, tokens: int) -> float:
        excess = len(self._log) + tokens - self._limit
        at = self._last
        if excess > 0:
            at = max(at, self._log[excess - 1] + self._window)
        return at

    def commit(self, tokens: int, at: float) -> None:
        log = self._log
        excess = len(log) + tokens - self._limit
        for _ in range(max(0, excess)):
            log.popleft()
        log.extend([at] * tokens)
        self._last = at


class SlidingWindowRateLimiter(QueuedLimiter):
    """An exact sliding window: never more than ``limit`` tokens in any ``window`` seconds.

    It keeps a log of grant times (one entry per token, at most ``limit``),
    so the guarantee holds for every window, not only aligned ones: a token
    granted at ``t`` frees its place at ``t + window``.

    Args:
        limit: tokens allowed per window, the most one ``acquire`` can ask for.
        window: the window's length in seconds (> 0).
        max_wait: as for :class:`TokenBucketRateLimiter`.
        scope: ``"global"`` or ``"host"`` (a log per :meth:`for_key` key).
        max_keys: how many per-key logs are kept with ``scope="host"``.
        header_pacing: whether :meth:`observe_response` pauses on rate-limit headers.
        clock: the time source; the system clock by default.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_wait: float | None = None,
        scope: Literal["global", "host"] = "global",
        max_keys: int = 1024,
        header_pacing: bool = False,
        clock: Clock | None = None,
    ) -> None:
        check_count(limit, "limit", 1)
        window = check_seconds(window, "window", allow_zero=False)
        super().__init__(
            limit,
            max_wait=max_wait,
            scope=scope,
            max_keys=max_keys,
            header_pacing=header_pacing,
            clock=clock,
        )
        self._window = window
        self._log: deque[float] = deque()

    @property
    def limit(self) -> int:
        """Tokens allowed per window."""
        return self._capacity

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self._window

    @property
    def used(self) -> int:
        """Tokens granted within the last ``window`` seconds."""
        self._prune(self._clock.monotonic())
        return len(self._log)

    def _prune(self, now: float) -> None:
        log = self._log
        horizon = now - self._window
        while log and log[0] <= horizon:
            log.popleft()

    def _try_take(self, tokens: int, now: float) -> bool:
        self._prune(now)
        if len(self._log) + tokens <= self._capacity:
            self._take(tokens, now)
            return True
        return False

    def _wait_for(self, tokens: int, now: float) -> float:
        self._prune(now)
        excess = len(self._log) + tokens - self._capacity
        if excess <= 0:
            return 0.0
        return self._log[excess - 1] + self._window - now

    def _take(self, tokens: int, now: float) -> None:
        # Float noise (the wait ended within EPS of the expiry) must not let
        # the log exceed the limit.
        self._prune(now + EPS)
        if tokens == 1:
            self._log.append(now)
        else:
            self._log.extend([now] * tokens)

    def _schedule(self, now: float, start: float) -> Schedule:
        self._prune(now)
        return _LogSchedule(self._log, self._capacity, self._window, start)

    def _is_idle(self, now: float) -> bool:
        self._prune(now)
        return not self._live and not self._is_paused(now) and not self._log

    def _spawn(self) -> SlidingWindowRateLimiter:
        return SlidingWindowRateLimiter(
            self._capacity,
            self._window,
            max_wait=self._max_wait,
            header_pacing=self._header_pacing,
            clock=self._clock,
        )

    def __repr__(self) -> str:
        now = self._clock.monotonic()
        self._prune(now)
        text = (
            f"SlidingWindowRateLimiter(limit={self._capacity}, window={self._window:g}s, "
            f"used={len(self._log)}, waiters={self._live}"
        )
        if self._is_paused(now):
            text += f", paused_for={self._paused_until - now:.1f}s"
        if self._children is not None:
            text += f", keys={len(self._children)}"
        return text + ")"
