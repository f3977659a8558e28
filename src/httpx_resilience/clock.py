"""The one module that reads real time.

Everything time-dependent in httpx-resilience takes a :class:`Clock`, so tests
can move time without sleeping (see :class:`httpx_resilience.testing.FakeClock`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


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

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
