"""A retry budget shared through a backend (Redis): one allowance of retries for many processes.

The pipeline asks :class:`~httpx_resilience.RetryBudget` synchronously
(``record_request``, ``try_spend``, ``available``), and a round trip per
request would cost more than the budget saves. So with a
:class:`~httpx_resilience.RedisBackend` the budget keeps, per key, a
:class:`_View`: the shared totals as of the last sync, plus what this process
added since. A background task (one per budget and event loop) deposits
those deltas with the ``budget_sync`` script every ``sync_interval`` seconds
while there is traffic, and reads the new totals back in the same round trip.

Precision: deposits are exact (each request and retry is counted once, at
most ``sync_interval`` late; a delta whose reply was lost in a fault is sent
again, so it may count twice). Between two syncs a process decides on totals
up to ``sync_interval`` old, so N processes may together spend up to N times
what was left at the last sync, once per interval; the next sync shows the
overdraft to all of them (the ratio's credit goes negative and the shared
floor into debt) and they stop until traffic or time earns it back. Over any
window of a few intervals, retries stay at ``ratio`` of the requests of all
processes plus one shared floor of ``min_per_second``.

:meth:`SharedBudget.try_spend_now` withdraws one retry exactly, in one round
trip (for callers that can await).

Until a key's first sync, and when its view is stale (no traffic for a
while), the budget's in-process state decides (it is always kept). While the
backend is down, ``fail_mode`` decides: ``"local"`` that in-process state,
``"open"`` allows every retry, ``"closed"`` allows none (a refused retry is
how a budget refuses).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ._errors import BackendDown
from ._events import logger
from ._memory import MemoryBackend

if TYPE_CHECKING:
    from ..policies.budget import RetryBudget, _Window
    from ._contract import SharedBackend
    from ._redis import RedisBackend

__all__ = ["SharedBudget", "attach_budget"]

_IDLE_SYNCS = 3  # syncs with nothing to deposit before the task stops
_FRESH_FOR = 5  # a view older than this many intervals is stale: decide locally

# Per MemoryBackend: the settings and windows of its budgets by name (shared in-process).
_windows: weakref.WeakKeyDictionary[
    MemoryBackend, dict[str, tuple[tuple[float, ...], OrderedDict[str, _Window]]]
] = weakref.WeakKeyDictionary()


def attach_budget(
    budget: RetryBudget, backend: SharedBackend, name: str, sync_interval: float
) -> None:
    """Give ``budget`` its shared state in ``backend`` under ``name``.

    A :class:`~httpx_resilience.MemoryBackend` shares the per-key windows of
    the budgets of this process with the same name (the local code, unchanged);
    a backend that runs scripts gets a :class:`SharedBudget`.

    Raises:
        ConfigurationError: ``backend`` is neither, or a budget of the same
            name on the same memory backend has other settings.
    """
    if isinstance(backend, MemoryBackend):
        by_name = _windows.setdefault(backend, {})
        settings = (budget.ratio, budget.min_per_second, budget.ttl, float(budget._n))
        found = by_name.setdefault(name, (settings, budget._windows))
        if found[0] != settings:
            raise ConfigurationError(
                f"a retry budget named {name!r} with other settings already uses this "
                "MemoryBackend; budgets sharing a name must share ratio, min_per_second, "
                "ttl and buckets (or give this one another name)",
                field="name",
            )
        budget._windows = found[1]
        return
    if not callable(getattr(backend, "run", None)):
        raise ConfigurationError(
            f"backend must be a MemoryBackend or a RedisBackend, got {type(backend).__name__}",
            field="backend",
        )
    budget._shared = SharedBudget(backend, budget, name, sync_interval)  # type: ignore[arg-type]


class _View:
    """One key's shared totals as of the last sync, and this process's deltas since."""

    __slots__ = ("at", "down", "floor", "pending", "requests", "retries", "sent")

    def __init__(self) -> None:
        self.at = -math.inf  # local monotonic time of the last sync (never: stale)
        self.down = False  # whether the last sync met a backend fault
        self.requests = 0.0  # shared requests in the window, at the last sync
        self.retries = 0.0  # shared ratio-paid retries in the window
        self.floor = 0.0  # the shared floor's reserve
        # (requests, ratio-paid retries, floor-paid retries) not yet sent / in flight
        self.pending = [0.0, 0.0, 0.0]
        self.sent = [0.0, 0.0, 0.0]


class SharedBudget:
    """The shared half of one :class:`~httpx_resilience.RetryBudget` (see the module doc).

    Args:
        backend: where the totals live.
        budget: the budget it serves (its ratio, floor, window and clock).
        name: the budget's name in the backend; processes with the same
            backend and name share one budget per key.
        sync_interval: seconds between two syncs while there is traffic.
    """

    __slots__ = (
        "_args", "_backend", "_budget", "_lock", "_name", "_task", "_views", "sync_interval",
    )

    def __init__(
        self, backend: RedisBackend, budget: RetryBudget, name: str, sync_interval: float = 0.1
    ) -> None:
        self._backend = backend
        self._budget = budget
        self._name = name
        self.sync_interval = sync_interval
        ttl_ms = math.ceil(max(2 * budget.ttl, 60.0) * 1000)
        self._args = (
            budget.ratio, budget.ttl * 1000.0 / budget._n, budget._n,
            budget.min_per_second, budget.floor_capacity, ttl_ms,
        )
        self._views: OrderedDict[str, _View] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None  # one sync at a time (deltas move once)

    def _view(self, key: str) -> _View:
        views = self._views
        v = views.get(key)
        if v is None:
            v = views[key] = _View()
            if len(views) > self._budget._max_keys:
                views.popitem(last=False)  # the least recently used key
        elif len(views) > 1:
            views.move_to_end(key)
        return v

    def _fresh(self, v: _View, now: float) -> bool:
        return now - v.at <= _FRESH_FOR * self.sync_interval

    # -- the budget's synchronous calls ------------------------------------------------

    def record_request(self, key: str) -> None:
        """Count one request towards the next deposit."""
        self._view(key).pending[0] += 1
        self._kick()

    def try_spend(self, key: str, now: float) -> bool | None:
        """Decide on the shared view; ``None`` when it is stale (the caller applies fail_mode)."""
        v = self._view(key)
        if not self._fresh(v, now):
            return self._unknown() if v.down else None
        b = self._budget
        p, s = v.pending, v.sent
        floor = self._floor(v, now)
        from_floor = min(1.0, max(0.0, floor))
        need = 1.0 - from_floor
        if need > 0.0:
            earned = b.ratio * (v.requests + p[0] + s[0]) - (v.retries + p[1] + s[1])
            if earned < need - 1e-9:
                return False
            p[1] += need
        p[2] += from_floor
        self._kick()
        return True

    def available(self, key: str, now: float) -> float | None:
        """Retries left on the shared view; ``None`` when it is stale."""
        v = self._view(key)
        if not self._fresh(v, now):
            return None
        p, s = v.pending, v.sent
        earned = self._budget.ratio * (v.requests + p[0] + s[0]) - (v.retries + p[1] + s[1])
        return max(0.0, earned) + max(0.0, self._floor(v, now))

    def _floor(self, v: _View, now: float) -> float:
        b = self._budget
        accrued = min(b.floor_capacity, v.floor + (now - v.at) * b.min_per_second)
        return accrued - v.pending[2] - v.sent[2]

    def _unknown(self) -> bool | None:
        mode = self._backend.fail_mode
        return None if mode == "local" else mode == "open"

    # -- the sync ------------------------------------------------------------------------

    def _kick(self) -> None:
        task = self._task
        if task is not None and not task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): local decisions only
            return
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        idle = 0
        try:
            while idle < _IDLE_SYNCS:
                idle = 0 if await self.sync() else idle + 1
                await self._budget._clock.sleep(self.sync_interval)
        except Exception:  # a reply it cannot read: decisions stay local until the next kick
            logger.exception("retry budget %r: the background sync failed; it restarts "
                             "with the next request", self._name)

    async def sync(self, *keys: str) -> bool:
        """Deposit every key's deltas and read the shared totals back; whether any were sent.

        ``keys`` not seen yet are read too (a process that served no request
        on a key learns what the others earned).
        """
        with self._budget._lock:
            for key in keys:
                self._view(key)
            views = list(self._views.items())
            dirty = any(any(v.pending) for _, v in views)
        await asyncio.gather(*(self._sync_one(k, v, False) for k, v in views))
        return dirty

    async def try_spend_now(self, key: str) -> bool:
        """Withdraw one retry from the shared budget exactly, in one round trip.

        While the backend is down: the local budget decides (``"local"``),
        ``True`` (``"open"``) or ``False`` (``"closed"``).
        """
        with self._budget._lock:
            v = self._view(key)
        granted = await self._sync_one(key, v, True)
        if granted is None:
            unknown = self._unknown()
            return self._budget._spend_local(key) if unknown is None else unknown
        return granted

    async def _sync_one(self, key: str, v: _View, withdraw: bool) -> bool | None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._sync_locked(key, v, withdraw)

    async def _sync_locked(self, key: str, v: _View, withdraw: bool) -> bool | None:
        p, s = v.pending, v.sent
        lock = self._budget._lock  # threads record into the view meanwhile
        with lock:
            for i in range(3):
                s[i] += p[i]
                p[i] = 0.0
            sent = [repr(x) for x in s]
        keys = (self._backend.key("budget", f"{self._name}/{key}"),)
        try:
            reply = await self._backend.run(
                "budget_sync", keys, [*sent, int(withdraw), *self._args]
            )
        except BackendDown:
            with lock:
                for i in range(3):  # sent again with the next sync
                    p[i] += s[i]
                    s[i] = 0.0
                v.down = True
            return None
        with lock:
            for i in range(3):
                s[i] = 0.0
            v.requests, v.retries, v.floor = (float(_text(x)) for x in reply[1:4])
            v.at = self._budget._clock.monotonic()
            v.down = False
        return bool(int(reply[0]))

    async def aclose(self) -> None:
        """Stop the background sync (after a last one)."""
        task = self._task
        self._task = None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sync()

    def __repr__(self) -> str:
        return f"<SharedBudget {self._name!r} keys={len(self._views)} on {self._backend!r}>"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
