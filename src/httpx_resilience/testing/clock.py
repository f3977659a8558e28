"""A fake clock: time moves only when the code under test sleeps or a test says so."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A :class:`~httpx_resilience.clock.Clock` for tests; sleeping advances time at once.

    ``sleep(s)`` records ``s`` in :attr:`sleeps`, moves :meth:`monotonic` and
    :meth:`wall` forward by ``s`` and yields to the event loop once, so
    backoff, cooldowns and windows are tested without real waiting.
    ``sleep_sync(s)`` does the same for synchronous code, without a loop.
    Time moves under a lock, so threads sharing the clock lose no advance.

    Args:
        start: the initial monotonic reading.
        wall_start: the initial wall-clock reading (seconds since the epoch).
    """

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        self.sleep_sync(seconds)
        await asyncio.sleep(0)

    def sleep_sync(self, seconds: float) -> None:
        """Record ``seconds`` in :attr:`sleeps` and move time forward by it, at once."""
        seconds = max(0.0, float(seconds))
        with self._lock:
            self.sleeps.append(seconds)
            self._now += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` without sleeping."""
        if seconds < 0:
            raise ValueError("FakeClock.advance: seconds must be >= 0 (time never goes back)")
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:.3f}, sleeps={len(self.sleeps)})"
