"""The cancellation scope of an attempt: ``asyncio.timeout``'s rules, behind one timer per loop.

Every attempt runs inside one :class:`timeout_scope`, so its cost is paid per
request. ``asyncio.timeout`` arms a timer handle per scope (a Python object
with its own context, pushed on the loop's heap and compared there by a
Python ``__lt__``) and cancels it a few microseconds later; under
``httpx.AsyncClient`` that alone cost about 6 µs per request. Here the
deadlines of one event loop share a single timer instead: a scope pushes
``(when, n, scope)`` on the loop's :class:`_Deadlines` heap (compared in C)
and marks itself done on exit; the one timer is re-armed only when a deadline
earlier than the armed one arrives, and when it fires it cancels the scopes
whose time has come and drops the finished ones. Finished entries are also
dropped in bulk once they outnumber the live ones, so the heap stays about
the size of what is in flight.

The rules are ``asyncio.timeout``'s (Python 3.11):

* on expiry the task is cancelled; the ``CancelledError`` that reaches the
  scope's exit becomes :class:`TimeoutError` (chained to it);
* a cancellation that came from outside (more cancel requests than the one
  the scope made, counted with ``Task.cancelling``/``uncancel``) stays a
  ``CancelledError``, so cancelling the caller still cancels it.

One difference: at expiry, a task that already has a cancellation pending
(the inner transport's own timeout firing in the same loop turn, or the
caller's) is not cancelled a second time; the pending one ends the body, and
the scope looks again 10 ms later in case it was swallowed.

Python 3.10 has no ``Task.uncancel``; there anyio's ``fail_after`` (also a
synchronous scope raising :class:`TimeoutError`) is used.
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from heapq import heapify, heappop, heappush
from types import TracebackType

__all__ = ["disarm", "timeout_scope"]

# Finished entries tolerated in a heap before a bulk clean-up is considered.
_COMPACT_AFTER = 256
# Seconds until an expired scope whose task was already being cancelled is looked at again.
_RECHECK = 0.01

if sys.version_info >= (3, 11):  # pragma: no branch - the branch depends on the interpreter
    import asyncio

    _get_running_loop = asyncio.get_running_loop
    _current_task = asyncio.current_task

    class _Deadlines:
        """The attempt deadlines of one event loop, behind a single timer."""

        __slots__ = ("__weakref__", "_armed_at", "_finished", "_handle", "_heap", "_loop", "_n")

        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self._loop = loop
            self._heap: list[tuple[float, int, timeout_scope]] = []
            self._handle: asyncio.TimerHandle | None = None
            self._armed_at = 0.0
            self._finished = 0  # finished scopes still in the heap (an upper bound)
            self._n = 0  # a tie-breaker, so scopes themselves are never compared

        def add(self, when: float, scope: timeout_scope) -> None:
            self._n += 1
            heappush(self._heap, (when, self._n, scope))
            if self._handle is None or when < self._armed_at:
                self._arm(when)

        def finished(self) -> None:
            """A scope left: clean up in bulk once finished entries outnumber live ones."""
            self._finished = n = self._finished + 1
            if n > _COMPACT_AFTER and 2 * n > len(self._heap):
                self._heap = [e for e in self._heap if not e[2]._done]
                heapify(self._heap)
                self._finished = 0

        def _arm(self, when: float) -> None:
            if self._handle is not None:
                self._handle.cancel()
            self._armed_at = when
            self._handle = self._loop.call_at(when, self._fire)

        def _fire(self) -> None:
            self._handle = None
            heap = self._heap
            now = self._loop.time()
            while heap:
                when, _, scope = heap[0]
                if scope._done:
                    heappop(heap)
                    self._finished = max(0, self._finished - 1)
                elif when <= now:
                    heappop(heap)
                    if not scope._expire():  # a cancellation is already on its way
                        self._n += 1
                        heappush(heap, (now + _RECHECK, self._n, scope))
                else:
                    break
            if heap:
                self._arm(heap[0][0])

        def __len__(self) -> int:
            return len(self._heap)

    # The scheduler of each loop; the last one used is kept in a tuple (read and
    # replaced atomically, so threads with loops of their own never mix them up).
    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
        weakref.WeakKeyDictionary()
    )
    _last: tuple[asyncio.AbstractEventLoop | None, _Deadlines | None] = (None, None)

    def _deadlines_of(loop: asyncio.AbstractEventLoop) -> _Deadlines:
        """The loop's scheduler (the last one used is found without a lookup)."""
        global _last
        cached_loop, deadlines = _last
        if cached_loop is loop and deadlines is not None:
            return deadlines
        deadlines = _by_loop.get(loop)
        if deadlines is None:
            deadlines = _by_loop[loop] = _Deadlines(loop)
        _last = (loop, deadlines)
        return deadlines

    class timeout_scope:  # used like a function, as asyncio.timeout is
        """A scope (``with timeout_scope(seconds):``) that raises :class:`TimeoutError` on expiry.

        Args:
            seconds: how long the body may run, from now.

        Raises:
            RuntimeError: outside an asyncio task.
        """

        __slots__ = ("_cancelling", "_deadlines", "_done", "_expired", "_task")

        def __init__(self, seconds: float) -> None:
            loop = _get_running_loop()
            task = _current_task(loop)
            if task is None:
                raise RuntimeError("timeout_scope must be used inside an asyncio task")
            self._task: asyncio.Task[object] | None = task
            self._cancelling = task.cancelling()
            self._expired = False
            self._done = False
            cached_loop, deadlines = _last  # _deadlines_of's fast path, without a call
            if cached_loop is not loop or deadlines is None:
                deadlines = _deadlines_of(loop)
            self._deadlines = deadlines
            deadlines.add(loop.time() + seconds, self)

        def _expire(self) -> bool:
            """Cancel the task, unless another cancellation is already pending; whether it did.

            The attempt's own per-phase timeouts (httpx's, clamped to the same
            budget) usually fire just before this backstop; a second cancel
            request landing in the same loop turn would turn their clean
            timeout into a cancellation in the middle of the transport's
            clean-up. The pending one ends the body anyway; should it be
            swallowed, the scheduler looks again a moment later.
            """
            task = self._task
            assert task is not None  # only live scopes expire
            if task.cancelling() > self._cancelling:
                return False
            self._expired = True
            task.cancel()
            return True

        def __enter__(self) -> timeout_scope:
            return self

        def disarm(self) -> None:
            """The work is done but for its clean-up: the scope no longer cancels it."""
            self._done = True  # the scheduler drops a done scope; __exit__ still counts it

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            self._done = True
            task, self._task = self._task, None  # the heap must not keep the task alive
            self._deadlines.finished()
            if (
                self._expired
                and task is not None
                and task.uncancel() <= self._cancelling
                and exc_type is asyncio.CancelledError
            ):
                raise TimeoutError from exc

else:  # pragma: no cover
    import anyio

    timeout_scope: Callable[[float], AbstractContextManager[object]] = anyio.fail_after


def disarm(scope: object) -> None:
    """Stop ``scope`` (a :func:`timeout_scope`) from cancelling what is left of its body.

    For a response read whole: closing it must not be cut short, or httpcore
    keeps the request registered in its pool (a slot lost for good).
    """
    method = getattr(scope, "disarm", None)
    if method is not None:
        method()
    else:  # pragma: no cover - anyio's CancelScope, Python 3.10
        scope.deadline = math.inf  # type: ignore[attr-defined]
