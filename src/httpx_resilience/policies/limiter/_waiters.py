"""A limiter's queue of waiters: asyncio tasks and threads in one FIFO line.

A waiter is either an :class:`AsyncWaiter` (a task's ``acquire``: a future of
its event loop) or a :class:`SyncWaiter` (a thread's ``acquire_sync``: a
``threading.Event``). Both stand in the same :class:`WaitQueue`, in the order
they arrived, so a thread and a task are served fairly. Only the head sleeps
until its grant; the queue makes the next live waiter the head when the head
leaves, and wakes it whichever thread frees the place: a thread's event is
set, a task's future is resolved directly in its own loop's thread, or through
``loop.call_soon_threadsafe`` from any other thread.

Every method of the queue and the waiters runs under the limiter's lock and
never blocks: waking is setting an event or scheduling a callback.
:func:`wait_async` and :func:`wait_sync` are the two waits themselves, the
only code written twice: :func:`join` the queue (or be refused up front, by
the estimate), wait to be the head, then take turns (:func:`step`, under the
limiter's lock) with sleeps on the clock between. A thread may bound its wait
with a ``timeout`` (its request's deadline) besides ``max_wait``:
:func:`expired` words the refusal of either.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from ...clock import Clock, sleep_sync
from ...exceptions import RateLimiterTimeout
from .._testing_mode import active
from ._allowance import EPS, Allowance, Schedule
from ._base import deadline_error

__all__ = [
    "AsyncWaiter",
    "SyncWaiter",
    "WaitQueue",
    "Waiter",
    "expired",
    "join",
    "step",
    "wait_async",
    "wait_sync",
]


class Waiter:
    """One queued request for ``tokens``; a subclass says how it is woken."""

    __slots__ = ("by_timeout", "dead", "deadline", "head", "start", "tokens")

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.start = 0.0  # when it asked, on the limiter's clock
        self.deadline = math.inf  # its max_wait (or a sync caller's timeout) ends here
        self.by_timeout = False  # the deadline is the caller's timeout, not max_wait
        self.head = False  # promoted to the front: it sleeps and grants itself
        self.dead = False  # left the queue (granted, refused or cancelled)

    def wake(self) -> None:
        """Let the waiter go on: it is the head now."""
        raise NotImplementedError

    def refuse(self, error: BaseException) -> None:
        """End the wait of a waiter that is not the head with ``error``."""
        raise NotImplementedError


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if not future.done():  # a task cancelled meanwhile has its outcome already
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class AsyncWaiter(Waiter):
    """An ``acquire`` of a task: woken through a future of its event loop."""

    __slots__ = ("future", "loop", "thread")

    def __init__(self, tokens: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(tokens)
        self.loop = loop
        self.thread = threading.get_ident()
        self.future: asyncio.Future[None] = loop.create_future()

    def _settle(self, error: BaseException | None) -> None:
        if threading.get_ident() == self.thread:
            _settle(self.future, error)
        else:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                self.loop.call_soon_threadsafe(_settle, self.future, error)

    def wake(self) -> None:
        self._settle(None)

    def refuse(self, error: BaseException) -> None:
        self._settle(error)


class SyncWaiter(Waiter):
    """An ``acquire_sync`` of a thread: woken through a ``threading.Event``."""

    __slots__ = ("error", "event")

    def __init__(self, tokens: int) -> None:
        super().__init__(tokens)
        self.event = threading.Event()
        self.error: BaseException | None = None

    def wake(self) -> None:
        self.event.set()

    def refuse(self, error: BaseException) -> None:
        self.error = error
        self.event.set()


class WaitQueue:
    """The FIFO line of a limiter's waiters, with the counts its estimates read.

    Attributes:
        live: waiters not yet dead.
        tokens: the tokens the live waiters ask for.
    """

    __slots__ = ("_line", "live", "tokens")

    def __init__(self) -> None:
        self._line: deque[Waiter] = deque()
        self.live = 0
        self.tokens = 0

    def __iter__(self) -> Iterator[Waiter]:
        """The live waiters, first come first."""
        return (w for w in self._line if not w.dead)

    def add(self, waiter: Waiter) -> None:
        """Queue ``waiter`` last; it is woken at once when it is the only one."""
        if not self.live:
            self._line.clear()  # only dead waiters are left in it
        self._line.append(waiter)
        self.live += 1
        self.tokens += waiter.tokens
        self.promote()

    def promote(self) -> None:
        """Make the first live waiter the head and wake it (once)."""
        line = self._line
        while line:
            w = line[0]
            if w.dead:
                line.popleft()
                continue
            if not w.head:
                w.head = True
                w.wake()
            return

    def drop(self, waiter: Waiter) -> None:
        """Count ``waiter`` out (granted, refused or cancelled); it stays in the line, dead."""
        if not waiter.dead:
            waiter.dead = True
            self.live -= 1
            self.tokens -= waiter.tokens

    def refuse_late(
        self, sched: Schedule, now: float, error: Callable[[Waiter, float], Exception]
    ) -> None:
        """Refuse the waiters ``sched`` (after a pause) grants past their deadline.

        ``error(waiter, needed)`` makes each refusal; a head already promoted
        is only marked dead and notices it itself when it wakes.
        """
        for w in list(self):
            at = sched.grant_time(w.tokens)
            if at <= w.deadline + EPS:
                sched.commit(w.tokens, at)
                continue
            self.drop(w)
            if not w.head:
                w.refuse(error(w, at - now))

    def leave(self, waiter: Waiter) -> None:
        """``waiter`` is done; when it was the head, the next one becomes it."""
        self.drop(waiter)
        if waiter.head:
            self.promote()


class _Limiter(Protocol):
    """What the waits use of their limiter (a ``QueuedLimiter``)."""

    _allowance: Allowance
    _clock: Clock
    _lock: threading.Lock
    _max_wait: float | None
    _paused_until: float
    _queue: WaitQueue

    def _estimate(self, tokens: int, now: float) -> float: ...
    def _timeout(self, tokens: int, waited: float, needed: float) -> RateLimiterTimeout: ...


def expired(limiter: _Limiter, waiter: Waiter, now: float, needed: float) -> Exception:
    """The refusal of ``waiter``, whose grant would come ``needed`` seconds after ``now``.

    A :class:`~httpx_resilience.RateLimiterTimeout` past ``max_wait``; a
    ``TimeoutError`` past a sync caller's own ``timeout`` (its deadline).
    """
    waited = now - waiter.start
    if waiter.by_timeout:
        return deadline_error(waiter.tokens, waited + needed, waiter.deadline - waiter.start)
    return limiter._timeout(waiter.tokens, waited, needed)


def join(limiter: _Limiter, waiter: Waiter, timeout: float | None = None) -> float | None:
    """Queue ``waiter`` (or refuse it up front); the time it came, or ``None``: granted
    at once, as every wait is zero while the testing switch is on."""
    tokens = waiter.tokens
    with limiter._lock:
        now = waiter.start = limiter._clock.monotonic()
        if active() is not None:  # the testing switch: every wait is zero
            limiter._allowance.take(tokens, now)
            return None
        bound = limiter._max_wait
        if timeout is not None and (bound is None or timeout < bound):
            bound, waiter.by_timeout = max(0.0, timeout), True
        if bound is not None:
            waiter.deadline = now + bound
            needed = limiter._estimate(tokens, now) - now
            if needed > bound + EPS:
                raise expired(limiter, waiter, now, needed)
        limiter._queue.add(waiter)
        return now


def step(limiter: _Limiter, waiter: Waiter) -> tuple[bool, float]:
    """The head's turn: ``(True, seconds waited)`` when granted, else ``(False, sleep)``."""
    tokens = waiter.tokens
    with limiter._lock:
        now = limiter._clock.monotonic()
        paused = limiter._paused_until - now
        if waiter.dead:  # refused by pause() while it slept
            raise expired(limiter, waiter, now, max(0.0, paused))
        wait = max(paused, limiter._allowance.wait_for(tokens, now))
        if wait <= EPS:
            limiter._allowance.take(tokens, now)
            limiter._queue.leave(waiter)  # the next one becomes the head
            return True, now - waiter.start
        if now + wait > waiter.deadline + EPS:  # a fallback from a backend: no estimate made
            raise expired(limiter, waiter, now, wait)
        return False, wait


async def wait_async(limiter: _Limiter, tokens: int) -> float:
    """A task's wait in ``limiter``'s queue for ``tokens``; the seconds waited."""
    waiter = AsyncWaiter(tokens, asyncio.get_running_loop())
    if join(limiter, waiter) is None:
        return 0.0
    clock = limiter._clock
    try:
        await waiter.future  # done at once when the queue was empty
        while True:
            done, value = step(limiter, waiter)
            if done:
                return value
            await clock.sleep(value)
    except BaseException:
        with limiter._lock:
            limiter._queue.leave(waiter)
        raise


def wait_sync(limiter: _Limiter, tokens: int, timeout: float | None = None) -> float:
    """A thread's wait in ``limiter``'s queue for ``tokens`` (it blocks only this thread)."""
    waiter = SyncWaiter(tokens)
    start = join(limiter, waiter, timeout)
    if start is None:
        return 0.0
    clock = limiter._clock
    try:
        if not waiter.event.is_set():
            left = waiter.deadline - clock.monotonic()
            # The head leaving wakes it; the timeout is a safety net (a head whose
            # event loop stalls), so the deadline holds all the same.
            if not waiter.event.wait(None if left == math.inf else max(0.0, left) + 0.05):
                with limiter._lock:
                    if not waiter.head:
                        raise expired(limiter, waiter, clock.monotonic(), 0.0)
        if waiter.error is not None:
            raise waiter.error
        while True:
            done, value = step(limiter, waiter)
            if done:
                return value
            sleep_sync(clock, value)
    except BaseException:
        with limiter._lock:
            limiter._queue.leave(waiter)
        raise
