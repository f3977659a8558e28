"""``RetryBudget``: retries stay a small fraction of traffic, so outages do not snowball.

Per key (a host by default) the budget allows two things:

* **a ratio**: ``ratio`` retries per request over the last ``ttl`` seconds
  (20 %: five requests earn one retry);
* **a floor**, as a rate: ``min_per_second`` retries per second accrue in a
  small reserve capped at one second's worth (and at least one retry), so a
  quiet client can still retry. The floor is not an upfront allowance of
  ``min_per_second × ttl``: under a full outage that would let a burst of
  requests retry far beyond the ratio.

A retry is paid from the floor's reserve first (it refills with time, and
what overflows its cap is lost), then from the ratio. Under a
full outage every request fails, so retries stay at about ``ratio`` of the
logical requests plus ``min_per_second`` per second, and upstream load near
``1 + ratio`` times the offered load instead of ``max_attempts`` times.

Counts live in ``buckets`` time slices that roll over as the clock moves; the
window keeps running totals, so every call is O(1) (a roll, at most once per
slice, recounts the slices). A key not used for a while is dropped (bounded by
``max_keys``). The counts change under a ``threading.Lock``, so threads and
event loops may share one budget without losing a count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from ..clock import SYSTEM_CLOCK, Clock
from ..config import check_number

if TYPE_CHECKING:
    from ..backends._contract import SharedBackend

__all__ = ["RetryBudget"]


class _Window:
    """One key's state: request counts and ratio-paid retries per time slice, their
    running totals, and the floor's reserve."""

    __slots__ = ("epoch", "floor", "floor_at", "requests", "retries", "total_requests",
                 "total_retries")

    def __init__(self, n: int, epoch: int, floor: float, now: float) -> None:
        self.requests = [0] * n
        self.retries = [0.0] * n  # the part of each retry the ratio paid
        self.total_requests = 0
        self.total_retries = 0.0
        self.epoch = epoch  # index of the current slice, in slice units since the clock's origin
        self.floor = floor  # the floor's reserve: retries it can still pay
        self.floor_at = now  # when the reserve was last topped up

    def roll(self, epoch: int) -> None:
        n = len(self.requests)
        gap = epoch - self.epoch
        if gap <= 0:
            return
        if gap >= n:
            for i in range(n):
                self.requests[i] = 0
                self.retries[i] = 0.0
        else:
            for e in range(self.epoch + 1, epoch + 1):
                i = e % n
                self.requests[i] = 0
                self.retries[i] = 0.0
        self.epoch = epoch
        # Recount rather than subtract: exact, and at most once per slice.
        self.total_requests = sum(self.requests)
        self.total_retries = sum(self.retries)


class _Shared(Protocol):
    """The shared half of a budget with a Redis backend (``backends._budget.SharedBudget``)."""

    def record_request(self, key: str) -> None: ...
    def try_spend(self, key: str, now: float) -> bool | None: ...
    def available(self, key: str, now: float) -> float | None: ...
    async def try_spend_now(self, key: str) -> bool: ...
    async def sync(self, *keys: str) -> bool: ...
    async def aclose(self) -> None: ...


class RetryBudget:
    """A shared allowance of retries per key.

    Args:
        ratio: retries allowed per request, over the window (0.2 = 20 %).
        min_per_second: the floor: retries per second always allowed, so a
            quiet client can still retry. It accrues as a rate into a reserve
            of one second's worth (at least one retry); a new key starts with
            the reserve full.
        ttl: the window of the ratio, in seconds.
        buckets: time slices of the window.
        max_keys: keys tracked at most; the least recently used is dropped.
        clock: the time source.
        name: the budget's name in ``backend``: budgets with the same backend
            and name share one allowance per key.
        backend: shared state. A :class:`~httpx_resilience.RedisBackend`
            shares the budget across processes: the calls stay synchronous
            and decide on the shared totals as of the last background sync
            (every ``sync_interval`` seconds while there is traffic; see
            :mod:`httpx_resilience.backends._budget` for the precision);
            :meth:`atry_spend` withdraws exactly. A
            :class:`~httpx_resilience.MemoryBackend` shares it between the
            budgets of this process.
        sync_interval: seconds between two syncs with a Redis backend.

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
        name: str = "default",
        backend: SharedBackend | None = None,
        sync_interval: float = 0.1,
    ) -> None:
        check_number("ratio", ratio, minimum=0, maximum=10)
        check_number("min_per_second", min_per_second, minimum=0)
        check_number("ttl", ttl, minimum=0.001)  # a window of at least 1 ms
        check_number("buckets", buckets, minimum=1, maximum=1000, integer=True)
        check_number("max_keys", max_keys, minimum=1, integer=True)
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.ttl = float(ttl)
        self._n = buckets
        self._width = self.ttl / buckets
        self._max_keys = max_keys
        self._clock = clock or SYSTEM_CLOCK
        # The floor's reserve holds one second's worth, and at least one retry
        # (a floor of 0.2/s still allows a retry every five seconds).
        self._floor_cap = max(1.0, self.min_per_second) if self.min_per_second > 0 else 0.0
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        # The key and window of the previous call, the most recent in the LRU.
        self._last: tuple[str, _Window] | None = None
        self._lock = threading.Lock()
        self._shared: _Shared | None = None
        if backend is not None:
            check_number("sync_interval", sync_interval, minimum=0.001)
            from ..backends._budget import attach_budget

            attach_budget(self, backend, name, float(sync_interval))

    @property
    def floor_capacity(self) -> float:
        """The most retries the floor's reserve holds: one second's worth, at least one
        (0 without a floor)."""
        return self._floor_cap

    def _window(self, key: str, now: float) -> _Window:
        epoch = int(now / self._width)
        last = self._last
        if last is not None and last[0] == key:
            # The key of the previous call (one host, the usual case) is already
            # the most recent in the LRU: no lookup, no reordering.
            w = last[1]
        else:
            found = self._windows.get(key)
            if found is None:
                w = self._windows[key] = _Window(self._n, epoch, self._floor_cap, now)
                if len(self._windows) > self._max_keys:
                    self._windows.popitem(last=False)
            else:
                w = found
                self._windows.move_to_end(key)
            self._last = (key, w)
        if epoch != w.epoch:
            w.roll(epoch)
        return w

    def _floor(self, w: _Window, now: float) -> float:
        """Top the floor's reserve up for the time since it was last read; return it."""
        elapsed = now - w.floor_at
        if elapsed > 0:
            w.floor = min(self._floor_cap, w.floor + elapsed * self.min_per_second)
            w.floor_at = now
        return w.floor

    def record_request(self, key: str = "") -> None:
        """Count one logical request (call once per request, not per attempt)."""
        lock = self._lock
        lock.acquire()  # not `with`: twice as dear, and this runs once per request
        try:
            w = self._window(key, self._clock.monotonic())
            w.requests[w.epoch % self._n] += 1
            w.total_requests += 1
            if self._shared is not None:
                self._shared.record_request(key)
        finally:
            lock.release()

    def try_spend(self, key: str = "") -> bool:
        """Take one retry from the budget; ``False`` (and nothing taken) when it is empty.

        The floor's reserve pays what it holds (up to the whole retry), the
        ratio the rest: the reserve refills with time and would overflow its
        cap, while the ratio's credit lasts the whole window.
        """
        shared = self._shared
        if shared is not None:
            with self._lock:
                verdict = shared.try_spend(key, self._clock.monotonic())
            if verdict is not None:
                return verdict
        return self._spend_local(key)

    async def atry_spend(self, key: str = "") -> bool:
        """:meth:`try_spend`, exact across processes with a Redis backend (one round trip).

        Without one (or with a memory backend) it is :meth:`try_spend`.
        """
        if self._shared is None:
            return self.try_spend(key)
        return await self._shared.try_spend_now(key)

    async def sync(self, *keys: str) -> None:
        """With a Redis backend: deposit this process's counts and read the shared
        totals of its keys and of ``keys`` now (the background sync does it every
        ``sync_interval`` while there is traffic)."""
        if self._shared is not None:
            await self._shared.sync(*keys)

    async def aclose(self) -> None:
        """With a Redis backend: a last sync, and the background sync stops."""
        if self._shared is not None:
            await self._shared.aclose()

    def _spend_local(self, key: str) -> bool:
        """:meth:`try_spend` on this process's counts alone."""
        lock = self._lock
        lock.acquire()
        try:
            now = self._clock.monotonic()
            w = self._window(key, now)
            floor = self._floor(w, now) if self._floor_cap else 0.0
            from_floor = floor if floor < 1.0 else 1.0
            need = 1.0 - from_floor
            if need > 0.0:
                earned = self.ratio * w.total_requests - w.total_retries
                if earned < need - 1e-9:
                    return False
                w.retries[w.epoch % self._n] += need
                w.total_retries += need
            w.floor = floor - from_floor
            return True
        finally:
            lock.release()

    def available(self, key: str = "") -> float:
        """Retries currently left for ``key`` (may be fractional): the ratio's plus the floor's."""
        now = self._clock.monotonic()
        shared = self._shared
        if shared is not None:
            with self._lock:
                left = shared.available(key, now)
            if left is not None:
                return left
        with self._lock:
            w = self._window(key, now)
            earned = max(0.0, self.ratio * w.total_requests - w.total_retries)
            return earned + self._floor(w, now)

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio:g}, min_per_second={self.min_per_second:g}, "
            f"ttl={self.ttl:g}, keys={len(self._windows)})"
        )
