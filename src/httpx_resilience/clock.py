"""The one module that reads real time.

Everything time-dependent in httpx-resilience takes a :class:`Clock`, so tests
can move time without sleeping (see :class:`httpx_resilience.testing.FakeClock`).

Synchronous code (a thread waiting for a limiter, a bulkhead or a backoff)
sleeps with :func:`sleep_sync`: the clock's own ``sleep_sync`` when it has
one (:class:`SystemClock` and ``FakeClock`` do), else :func:`time.sleep`, so
a user clock written before sync support keeps working.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "sleep_sync"]


@runtime_checkable
class Clock(Protocol):
    """A source of time: a monotonic reading, the wall clock and an async sleep."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    def wall(self) -> float:
        """Seconds since the Unix epoch (used for HTTP-date ``Retry-After``)."""

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (zero or less yields once)."""


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, :func:`asyncio.sleep`."""

    __slots__ = ()

    # The builtins themselves, not methods wrapping them: a request reads the
    # clock about a dozen times, and each Python-level call costs a frame.
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_sync(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (zero or less returns at once)."""
        if seconds > 0:
            time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()


def sleep_sync(clock: Clock, seconds: float) -> None:
    """Block the calling thread for ``seconds`` on ``clock``.

    Calls ``clock.sleep_sync(seconds)`` when the clock has one (the system
    clock sleeps, ``FakeClock`` advances), else :func:`time.sleep`: the
    :class:`Clock` protocol does not require it, so a user clock without it
    still works (its sync waits are then real).
    """
    method = getattr(clock, "sleep_sync", None)
    if method is not None:
        method(seconds)
    elif seconds > 0:
        time.sleep(seconds)
