"""MemoryBackend: the contract's atomic operations on in-process state.

The same arithmetic as the Lua scripts (``lua/``), on the injected clock, for
limiters that share state by name within one process, for tests, and as the
model the contract suite checks Redis against. Its limiter operations never
suspend and run under a lock, so threads use them too (``token_bucket_sync``).
It never fails, so its ``fail_mode`` never matters. Idle state (a full bucket, an empty window, a
pause that ended) expires as a Redis key would, swept every few hundred calls.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ._contract import Grant, SharedBackend, check_fail_mode, check_prefix
from ._errors import FailMode

__all__ = ["MemoryBackend"]

_SWEEP_EVERY = 512  # calls between two sweeps of expired state


class MemoryBackend(SharedBackend):
    """Shared state in this process (the default when no backend is given).

    Args:
        prefix: the first part of every key.
        fail_mode: kept for symmetry with :class:`~.RedisBackend` (memory never fails).
        clock: the time source; the system clock by default.
    """

    def __init__(
        self,
        prefix: str = "httpx-resilience",
        fail_mode: FailMode = "local",
        *,
        clock: Clock | None = None,
    ) -> None:
        self.prefix = check_prefix(prefix)
        self.fail_mode = check_fail_mode(fail_mode)
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        # key -> (expiry on the clock, state); state is a float or a deque.
        self._state: dict[str, tuple[float, Any]] = {}
        self._calls = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "memory"

    def __repr__(self) -> str:
        return f"MemoryBackend(prefix={self.prefix!r}, keys={len(self._state)})"

    def _get(self, key: str, now: float) -> Any:
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        item = self._state.get(key)
        if item is None or item[0] <= now:
            return None
        return item[1]

    def _sweep(self, now: float) -> None:
        for key in [k for k, (exp, _) in self._state.items() if exp <= now]:
            del self._state[key]

    def _paused_until(self, name: str, now: float) -> float:
        until = self._get(self.key("limiter", name, "pause"), now)
        return float(until) if until is not None else -math.inf

    async def token_bucket(
        self,
        name: str,
        *,
        rate: float,
        burst: int,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant:
        with self._lock:  # threads (acquire_sync) and tasks share the state
            now = self._clock.monotonic()
            key = self.key("limiter", name, "bucket")
            interval = 1.0 / rate
            start = max(now + paused_for, self._paused_until(name, now))
            tat = self._get(key, now)
            tat = start if tat is None else max(float(tat), start)
            new_tat = tat + tokens * interval
            wait = max(new_tat - burst * interval, start) - now
            if wait > 0 and horizon is not None and wait > horizon:
                return Grant(False, wait)
            self._state[key] = (new_tat, new_tat)
            return Grant(True, max(0.0, wait))

    async def sliding_window(
        self,
        name: str,
        *,
        limit: int,
        window: float,
        tokens: int,
        horizon: float | None,
        paused_for: float = 0.0,
    ) -> Grant:
        with self._lock:  # threads (acquire_sync) and tasks share the state
            now = self._clock.monotonic()
            key = self.key("limiter", name, "window")
            log: deque[float] | None = self._get(key, now)
            if log is None:
                log = deque()
            while log and log[0] <= now - window:
                log.popleft()
            at = max(now + paused_for, self._paused_until(name, now))
            if log:
                at = max(at, log[-1])
            excess = len(log) + tokens - limit
            if excess > 0:
                at = max(at, log[excess - 1] + window)
            wait = at - now
            if wait > 0 and horizon is not None and wait > horizon:
                return Grant(False, wait)
            log.extend([at] * tokens)
            self._state[key] = (at + window, log)
            return Grant(True, max(0.0, wait))

    async def pause(self, name: str, seconds: float) -> float:
        now = self._clock.monotonic()
        key = self.key("limiter", name, "pause")
        until = max(self._paused_until(name, now), now + max(0.0, seconds))
        if until > now:
            self._state[key] = (until, until)
        return max(0.0, until - now)

    async def paused_for(self, name: str) -> float:
        now = self._clock.monotonic()
        return max(0.0, self._paused_until(name, now) - now)
