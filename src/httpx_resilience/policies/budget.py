"""``RetryBudget``: retries stay a small fraction of traffic, so outages do not snowball.

Finagle/Envoy style: per key (a host by default) the budget allows, over the
last ``ttl`` seconds, ``min_per_second * ttl`` retries plus ``ratio`` times the
number of requests. Under a full outage every request fails, so retries are
capped at about ``ratio`` of the logical requests and upstream load stays near
``1 + ratio`` times the offered load instead of ``max_attempts`` times.

Counts live in ``buckets`` time slices that roll over as the clock moves; a key
not used for a while is dropped (bounded by ``max_keys``).
"""

from __future__ import annotations

from collections import OrderedDict

from ..clock import SYSTEM_CLOCK, Clock
from ..config import check_number

__all__ = ["RetryBudget"]


class _Window:
    """Request and retry counts in a ring of time buckets."""

    __slots__ = ("epoch", "requests", "retries")

    def __init__(self, n: int, epoch: int) -> None:
        self.requests = [0] * n
        self.retries = [0] * n
        self.epoch = epoch  # index of the current bucket, in bucket units since the clock's origin

    def roll(self, epoch: int) -> None:
        n = len(self.requests)
        gap = epoch - self.epoch
        if gap <= 0:
            return
        if gap >= n:
            for i in range(n):
                self.requests[i] = 0
                self.retries[i] = 0
        else:
            for e in range(self.epoch + 1, epoch + 1):
                i = e % n
                self.requests[i] = 0
                self.retries[i] = 0
        self.epoch = epoch


class RetryBudget:
    """A shared allowance of retries per key.

    Args:
        ratio: retries allowed per request, over the window (0.2 = 20 %).
        min_per_second: retries per second always allowed, so a quiet client
            can still retry.
        ttl: the window, in seconds.
        buckets: time slices of the window.
        max_keys: keys tracked at most; the least recently used is dropped.
        clock: the time source.

    Raises:
        ConfigurationError: a value out of range (the message names it).
    """

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        ttl: float = 10.0,
        *,
        buckets: int = 10,
        max_keys: int = 1024,
        clock: Clock | None = None,
    ) -> None:
        check_number("ratio", ratio, minimum=0, maximum=10)
        check_number("min_per_second", min_per_second, minimum=0)
        check_number("ttl", ttl, minimum=0, exclusive_min=True)
        check_number("buckets", buckets, minimum=1, maximum=1000, integer=True)
        check_number("max_keys", max_keys, minimum=1, integer=True)
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.ttl = float(ttl)
        self._n = buckets
        self._width = self.ttl / buckets
        self._max_keys = max_keys
        self._clock = clock or SYSTEM_CLOCK
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        # The key and window of the previous call, the most recent in the LRU.
        self._last: tuple[str, _Window] | None = None

    def _window(self, key: str) -> _Window:
        epoch = int(self._clock.monotonic() / self._width)
        last = self._last
        if last is not None and last[0] == key:
            # The key of the previous call (one host, the usual case) is already
            # the most recent in the LRU: no lookup, no reordering.
            w = last[1]
        else:
            found = self._windows.get(key)
            if found is None:
                w = self._windows[key] = _Window(self._n, epoch)
                if len(self._windows) > self._max_keys:
                    self._windows.popitem(last=False)
            else:
                w = found
                self._windows.move_to_end(key)
            self._last = (key, w)
        if epoch != w.epoch:
            w.roll(epoch)
        return w

    def record_request(self, key: str = "") -> None:
        """Count one logical request (call once per request, not per attempt)."""
        w = self._window(key)
        w.requests[w.epoch % self._n] += 1

    def try_spend(self, key: str = "") -> bool:
        """Take one retry from the budget; ``False`` (and nothing taken) when it is empty."""
        w = self._window(key)
        allowed = self.min_per_second * self.ttl + self.ratio * sum(w.requests)
        if sum(w.retries) + 1 > allowed:
            return False
        w.retries[w.epoch % self._n] += 1
        return True

    def available(self, key: str = "") -> float:
        """Retries currently left for ``key`` (may be fractional)."""
        w = self._window(key)
        return max(
            0.0, self.min_per_second * self.ttl + self.ratio * sum(w.requests) - sum(w.retries)
        )

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio:g}, min_per_second={self.min_per_second:g}, "
            f"ttl={self.ttl:g}, keys={len(self._windows)})"
        )
