"""The exact sliding-window limiter: never more than ``limit`` tokens in any ``window``.

:class:`GrantLog` is the arithmetic: a log of grant times, one entry per
token, so the guarantee holds for every window, not only aligned ones.
:class:`SlidingWindowRateLimiter` puts it behind the queue, ``max_wait`` and
pauses of :class:`~httpx_resilience.policies.limiter._queue.QueuedLimiter`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Literal

from ...backends._contract import Grant, SharedBackend
from ...clock import SYSTEM_CLOCK, Clock
from ._allowance import EPS, Allowance, Schedule
from ._base import check_count, check_seconds
from ._queue import DEFAULT_MAX_PAUSE, QueuedLimiter

__all__ = ["GrantLog", "SlidingWindowRateLimiter"]


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


class GrantLog(Allowance):
    """The grant times of the last ``window`` seconds, one entry per token (≤ ``capacity``).

    Args:
        capacity: tokens allowed per window (≥ 1, already validated).
        window: the window's length in seconds (> 0, already validated).
    """

    __slots__ = ("_log", "capacity", "window")

    def __init__(self, capacity: int, window: float) -> None:
        self.capacity = capacity
        self.window = window
        self._log: deque[float] = deque()

    def used(self, now: float) -> int:
        """Tokens granted within the ``window`` seconds before ``now``."""
        self._prune(now)
        return len(self._log)

    def _prune(self, now: float) -> None:
        log = self._log
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()

    def try_take(self, tokens: int, now: float) -> bool:
        self._prune(now)
        if len(self._log) + tokens <= self.capacity:
            self.take(tokens, now)
            return True
        return False

    def wait_for(self, tokens: int, now: float) -> float:
        self._prune(now)
        excess = len(self._log) + tokens - self.capacity
        if excess <= 0:
            return 0.0
        return self._log[excess - 1] + self.window - now

    def take(self, tokens: int, now: float) -> None:
        # Float noise (the wait ended within EPS of the expiry) must not let
        # the log exceed the limit.
        self._prune(now + EPS)
        if tokens == 1:
            self._log.append(now)
        else:
            self._log.extend([now] * tokens)

    def schedule(self, now: float, start: float) -> Schedule:
        self._prune(now)
        return _LogSchedule(self._log, self.capacity, self.window, start)

    def is_idle(self, now: float) -> bool:
        self._prune(now)
        return not self._log

    def describe(self, now: float) -> str:
        self._prune(now)
        return f"limit={self.capacity}, window={self.window:g}s, used={len(self._log)}"


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
        limit: int,
        window: float,
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
        check_count(limit, "limit", 1)
        window = check_seconds(window, "window", allow_zero=False)
        self._grants = GrantLog(limit, window)
        super().__init__(
            self._grants,
            max_wait=max_wait,
            scope=scope,
            max_keys=max_keys,
            header_pacing=header_pacing,
            clock=clock if clock is not None else SYSTEM_CLOCK,
            max_pause=max_pause,
            backend=backend,
            name=name,
        )

    @property
    def limit(self) -> int:
        """Tokens allowed per window."""
        return self._grants.capacity

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self._grants.window

    @property
    def used(self) -> int:
        """Tokens granted within the last ``window`` seconds."""
        with self._lock:  # counting prunes the log
            return self._grants.used(self._clock.monotonic())

    def _spawn(
        self, max_wait: float | None, header_pacing: bool, clock: Clock
    ) -> SlidingWindowRateLimiter:
        grants = self._grants
        return SlidingWindowRateLimiter(
            grants.capacity,
            grants.window,
            max_wait=max_wait,
            header_pacing=header_pacing,
            clock=clock,
        )

    def _default_name(self) -> str:
        return f"sliding-window:{self._grants.capacity}:{self._grants.window:g}"

    async def _take_shared(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant:
        b = self._grants
        return await backend.sliding_window(
            name, limit=b.capacity, window=b.window, tokens=tokens, horizon=horizon,
            paused_for=paused,
        )

    def _take_shared_sync(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant | None:
        b = self._grants
        return backend.sliding_window_sync(
            name, limit=b.capacity, window=b.window, tokens=tokens, horizon=horizon,
            paused_for=paused,
        )

    def __repr__(self) -> str:
        return self._describe("SlidingWindowRateLimiter")
