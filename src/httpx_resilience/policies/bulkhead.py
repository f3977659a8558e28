"""The bulkhead: a cap on concurrent requests, with a small fair queue.

A request takes a slot at once when one is free; otherwise it queues
(first-in-first-out) if the queue has room, and is refused with
:class:`~httpx_resilience.BulkheadFullError` when it has none. A released
slot is handed straight to the oldest waiter, so a newcomer can never take it
first. A queued waiter that is cancelled, or whose ``max_wait`` passes, leaves
without taking a slot; one cancelled just after it was handed a slot gives it
back. Nothing leaks.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from types import TracebackType

from ..clock import SYSTEM_CLOCK, Clock
from ..exceptions import BulkheadFullError, ConfigurationError

__all__ = ["Bulkhead"]


class Bulkhead:
    """At most ``max_concurrent`` requests in flight, ``max_queue`` more waiting.

    Args:
        max_concurrent: requests allowed in flight at once (≥ 1).
        max_queue: requests allowed to wait for a slot (≥ 0; 0 refuses at once).
        max_wait: the longest a queued request waits before
            :class:`~httpx_resilience.BulkheadFullError` (``None``: no limit).
        clock: the time source for ``max_wait``; the system clock by default.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.

    Use ``await bulkhead.acquire()`` … ``bulkhead.release()``, or
    ``async with bulkhead:``. Meant for one event loop.
    """

    __slots__ = (
        "_clock",
        "_in_flight",
        "_max_concurrent",
        "_max_queue",
        "_max_wait",
        "_queue",
        "_queued",
    )

    def __init__(
        self,
        max_concurrent: int,
        max_queue: int = 0,
        *,
        max_wait: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        for field, value, low in (
            ("max_concurrent", max_concurrent, 1),
            ("max_queue", max_queue, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigurationError(
                    f"{field} must be an integer >= {low}, got {value!r}", field=field
                )
        if max_wait is not None and (
            not isinstance(max_wait, (int, float))
            or isinstance(max_wait, bool)
            or not 0 <= max_wait < math.inf
        ):
            raise ConfigurationError(
                f"max_wait must be None or a finite number of seconds >= 0, got {max_wait!r}",
                field="max_wait",
            )
        self._max_concurrent = max_concurrent
        self._max_queue = max_queue
        self._max_wait = None if max_wait is None else float(max_wait)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._in_flight = 0
        self._queued = 0  # live waiters; cancelled futures may still sit in _queue
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def max_concurrent(self) -> int:
        """Requests allowed in flight at once."""
        return self._max_concurrent

    @property
    def max_queue(self) -> int:
        """Requests allowed to wait for a slot."""
        return self._max_queue

    @property
    def max_wait(self) -> float | None:
        """The longest a queued request waits (``None``: no limit)."""
        return self._max_wait

    @property
    def in_flight(self) -> int:
        """Slots taken now."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return self._queued

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue when all are taken.

        Raises:
            BulkheadFullError: every slot and queue place is taken, or
                ``max_wait`` passed while queued; no slot is held.
        """
        if self._in_flight < self._max_concurrent and not self._queued:
            self._in_flight += 1
            return
        if self._queued >= self._max_queue or self._max_wait == 0:
            raise self._full(waited=None)
        if not self._queued:
            self._queue.clear()  # only cancelled waiters are left in it
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(fut)
        self._queued += 1
        timer: asyncio.Task[None] | None = None
        if self._max_wait is not None:
            timer = asyncio.get_running_loop().create_task(self._clock.sleep(self._max_wait))
            timer.add_done_callback(lambda t: self._expire(fut, t))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # Handed a slot in the same breath as we were cancelled: give it back.
                self.release()
            elif not fut.done() or fut.cancelled():
                self._queued -= 1
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _expire(self, fut: asyncio.Future[None], timer: asyncio.Future[None]) -> None:
        if timer.cancelled() or fut.done():
            return
        self._queued -= 1
        fut.set_exception(self._full(waited=self._max_wait))

    def _full(self, waited: float | None) -> BulkheadFullError:
        if waited is None:
            what = f"all {self._max_concurrent} slots and {self._max_queue} queue places are taken"
        else:
            what = f"no slot of {self._max_concurrent} came free within max_wait={waited:g} s"
        return BulkheadFullError(
            f"Bulkhead full: {what}",
            max_concurrent=self._max_concurrent,
            max_queue=self._max_queue,
        )

    def release(self) -> None:
        """Give a slot back; the oldest waiter, if any, gets it.

        Raises:
            RuntimeError: no slot is held (more releases than acquires).
        """
        while self._queue:
            fut = self._queue.popleft()
            if not fut.done():
                self._queued -= 1
                fut.set_result(None)  # the slot passes over; in_flight is unchanged
                return
        if self._in_flight <= 0:
            raise RuntimeError("Bulkhead.release() called more times than acquire()")
        self._in_flight -= 1

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"Bulkhead(in_flight={self._in_flight}/{self._max_concurrent}, "
            f"queued={self._queued}/{self._max_queue})"
        )
