"""The bulkhead: a cap on concurrent requests, with a small fair queue.

A request takes a slot at once when one is free; otherwise it queues
(first-in-first-out) if the queue has room, and is refused with
:class:`~httpx_resilience.BulkheadFullError` when it has none. A released
slot is handed straight to the oldest waiter, so a newcomer can never take it
first. A queued waiter that is cancelled, or whose ``max_wait`` passes, leaves
without taking a slot; one cancelled just after it was handed a slot gives it
back. Nothing leaks.

Tasks (``await acquire()``) and threads (``acquire_sync()``) share the slots
and stand in one FIFO queue: a queued task holds a future of its event loop,
a queued thread a ``threading.Event``, and ``release`` (from any thread) hands
the slot to the oldest of either kind: a future of another thread's loop is
resolved through ``loop.call_soon_threadsafe``. The counts change under a
``threading.Lock``, never held across a wait. A thread's wait is measured on
real time (an event's timeout); a task's ``max_wait`` on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import deque
from collections.abc import Iterator
from types import TracebackType

from ..clock import SYSTEM_CLOCK, Clock
from ..exceptions import BulkheadFullError, ConfigurationError

__all__ = ["Bulkhead"]

_WAITING, _GRANTED, _GONE = 0, 1, 2


def _settle(fut: asyncio.Future[None], error: BaseException | None) -> None:
    if not fut.done():
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


class _Ticket:
    """A queued acquire: a task's future (``loop`` set) or a thread's event."""

    __slots__ = ("event", "future", "loop", "state", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.state = _WAITING  # set under the bulkhead's lock
        self.loop = loop
        self.thread = threading.get_ident()
        self.future: asyncio.Future[None] | None = None
        self.event: threading.Event | None = None
        if loop is not None:
            self.future = loop.create_future()
        else:
            self.event = threading.Event()

    def wake(self, error: BaseException | None = None) -> None:
        """Let it go on (it was handed a slot) or, with ``error``, refuse it."""
        fut = self.future
        if fut is None:
            assert self.event is not None
            self.event.set()
        elif threading.get_ident() == self.thread:
            _settle(fut, error)
        else:
            assert self.loop is not None
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                self.loop.call_soon_threadsafe(_settle, fut, error)


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
    ``async with bulkhead:``; from a thread ``bulkhead.acquire_sync()`` …
    ``release()``, or ``with bulkhead.hold_sync(timeout=...):``. One
    bulkhead may serve threads and event loops at once.
    """

    __slots__ = (
        "_clock",
        "_in_flight",
        "_lock",
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
        self._queue: deque[_Ticket] = deque()
        self._lock = threading.Lock()

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
        loop = asyncio.get_running_loop()
        ticket = self._enter(loop)
        if ticket is None:
            return
        fut = ticket.future
        assert fut is not None
        timer: asyncio.Task[None] | None = None
        if self._max_wait is not None:
            timer = loop.create_task(self._clock.sleep(self._max_wait))
            timer.add_done_callback(lambda t: self._expire(ticket, t))
        try:
            await fut
        except BaseException:
            if self._abandon(ticket):
                self.release()  # handed a slot in the same breath as it was cancelled
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def acquire_sync(self, timeout: float | None = None) -> None:
        """Take a slot from a thread, blocking it (only it) in the queue when all are taken.

        Args:
            timeout: the longest this call may wait, in seconds (a request's
                deadline), besides the bulkhead's ``max_wait``.

        Raises:
            BulkheadFullError: every slot and queue place is taken, or
                ``max_wait`` passed while queued; no slot is held.
            TimeoutError: ``timeout`` ran out first; no slot is held.
        """
        ticket = self._enter(None)
        if ticket is None:
            return
        assert ticket.event is not None
        limits = [t for t in (self._max_wait, timeout) if t is not None]
        if ticket.event.wait(max(0.0, min(limits)) if limits else None):
            return
        if not self._abandon(ticket):
            if timeout is not None and (self._max_wait is None or timeout < self._max_wait):
                raise TimeoutError(
                    f"no bulkhead slot of {self._max_concurrent} came free within the "
                    f"{timeout:g} s left (the deadline)"
                )
            raise self._full(waited=self._max_wait)

    @contextlib.contextmanager
    def hold_sync(self, timeout: float | None = None) -> Iterator[Bulkhead]:
        """A slot for a ``with`` block, from a thread (see :meth:`acquire_sync`)."""
        self.acquire_sync(timeout)
        try:
            yield self
        finally:
            self.release()

    def _enter(self, loop: asyncio.AbstractEventLoop | None) -> _Ticket | None:
        """A slot at once (``None``), or a ticket in the queue; refuses when it is full."""
        lock = self._lock
        lock.acquire()  # not `with`, which costs twice as much: this runs once per request
        try:
            if self._in_flight < self._max_concurrent and not self._queued:
                self._in_flight += 1
                return None
            if self._queued >= self._max_queue or self._max_wait == 0:
                raise self._full(waited=None)
            if not self._queued:
                self._queue.clear()  # only abandoned tickets are left in it
            ticket = _Ticket(loop)
            self._queue.append(ticket)
            self._queued += 1
            return ticket
        finally:
            lock.release()

    def _abandon(self, ticket: _Ticket) -> bool:
        """Leave the queue; ``True`` when a slot was handed over meanwhile (keep or give back)."""
        with self._lock:
            if ticket.state == _GRANTED:
                return True
            if ticket.state == _WAITING:
                ticket.state = _GONE
                self._queued -= 1
            return False

    def _expire(self, ticket: _Ticket, timer: asyncio.Future[None]) -> None:
        if timer.cancelled():
            return
        with self._lock:
            if ticket.state != _WAITING:
                return
            ticket.state = _GONE
            self._queued -= 1
        ticket.wake(self._full(waited=self._max_wait))

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
        lock = self._lock
        lock.acquire()
        try:
            while self._queue:
                ticket = self._queue.popleft()
                if ticket.state == _WAITING:
                    ticket.state = _GRANTED  # the slot passes over; in_flight is unchanged
                    self._queued -= 1
                    break
            else:
                if self._in_flight <= 0:
                    raise RuntimeError("Bulkhead.release() called more times than acquire()")
                self._in_flight -= 1
                return
        finally:
            lock.release()
        ticket.wake()

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

    def __enter__(self) -> Bulkhead:
        self.acquire_sync()
        return self

    def __exit__(
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
