"""A circuit breaker's sliding windows: the recent outcomes its rate rules read.

:class:`CountWindow` keeps the last ``n`` calls, :class:`TimeWindow` the
calls of the last ``seconds`` in buckets. Both keep running totals (calls,
failures, slow calls) so the
:class:`~httpx_resilience.policies.breaker._machine.BreakerMachine` reads a
rate in O(1); neither reads a clock (``now`` comes in).
"""

from __future__ import annotations

import math

__all__ = ["CountWindow", "TimeWindow"]


class CountWindow:
    """The outcomes of the last ``size`` calls, in a ring; O(1) per call, no allocation."""

    __slots__ = ("_idx", "_ring", "failures", "slow", "total")

    def __init__(self, size: int) -> None:
        # Each slot holds a bit set: 1 = failed, 2 = slow, 4 = occupied.
        self._ring = [0] * size
        self._idx = 0
        self.total = 0
        self.failures = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        old = self._ring[self._idx]
        if old:
            self.total -= 1
            self.failures -= old & 1
            self.slow -= (old >> 1) & 1
        self._ring[self._idx] = 4 | failed | (slow << 1)
        self._idx = (self._idx + 1) % len(self._ring)
        self.total += 1
        self.failures += failed
        self.slow += slow

    def roll(self, now: float) -> None:
        """Count windows do not age; present for symmetry with :class:`TimeWindow`."""

    def clear(self) -> None:
        self._ring = [0] * len(self._ring)
        self._idx = 0
        self.total = self.failures = self.slow = 0


class TimeWindow:
    """The outcomes of the last ``seconds``, aggregated in buckets.

    Buckets are ``seconds / n`` wide (n between 10 and 120, about one per
    second), so a call is forgotten between ``seconds - width`` and
    ``seconds`` after it ended: the usual trade of precision for O(1) memory.
    """

    __slots__ = ("_fail", "_head", "_n", "_slow", "_tot", "_width", "failures", "slow", "total")

    def __init__(self, seconds: float) -> None:
        self._n = min(max(math.ceil(seconds), 10), 120)
        self._width = seconds / self._n
        self._tot = [0] * self._n
        self._fail = [0] * self._n
        self._slow = [0] * self._n
        # Far in the past: the first roll clears every bucket.
        self._head = -(1 << 62)
        self.total = self.failures = self.slow = 0

    def roll(self, now: float) -> None:
        """Forget the buckets that fell out of the window by ``now``."""
        epoch = math.floor(now / self._width)
        if epoch <= self._head:
            return
        if epoch - self._head >= self._n:
            self.clear()
        else:
            for e in range(self._head + 1, epoch + 1):
                i = e % self._n
                self.total -= self._tot[i]
                self.failures -= self._fail[i]
                self.slow -= self._slow[i]
                self._tot[i] = self._fail[i] = self._slow[i] = 0
        self._head = epoch

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self.roll(now)
        i = self._head % self._n
        self._tot[i] += 1
        self._fail[i] += failed
        self._slow[i] += slow
        self.total += 1
        self.failures += failed
        self.slow += slow

    def clear(self) -> None:
        self._tot = [0] * self._n
        self._fail = [0] * self._n
        self._slow = [0] * self._n
        self.total = self.failures = self.slow = 0
