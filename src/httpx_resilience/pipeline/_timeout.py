"""The cancellation scope of an attempt: :class:`timeout_scope`, asyncio.timeout's rules, cheaper.

Every attempt runs inside one scope, so its cost is paid per request.
``asyncio.timeout`` builds a ``Timeout``, runs two coroutines for
``__aenter__``/``__aexit__`` and reschedules through a state machine; this
scope does the same work as a plain (synchronous) context manager: one timer
handle armed on entry and cancelled on exit. Its rules are
``asyncio.timeout``'s (Python 3.11):

* on expiry the task is cancelled; the ``CancelledError`` that reaches the
  scope's exit becomes :class:`TimeoutError` (chained to it);
* a cancellation that came from outside (more cancel requests than the one
  the scope made, counted with ``Task.cancelling``/``uncancel``) stays a
  ``CancelledError``, so cancelling the caller still cancels it.

Python 3.10 has no ``Task.uncancel``; there anyio's ``fail_after`` (also a
synchronous scope raising :class:`TimeoutError`) is used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

__all__ = ["timeout_scope"]

if sys.version_info >= (3, 11):  # pragma: no branch - the branch depends on the interpreter
    import asyncio

    _get_running_loop = asyncio.get_running_loop
    _current_task = asyncio.current_task

    class timeout_scope:  # used like a function, as asyncio.timeout is
        """A scope (``with timeout_scope(seconds):``) that raises :class:`TimeoutError` on expiry.

        Args:
            seconds: how long the body may run, from now.

        Raises:
            RuntimeError: outside an asyncio task.
        """

        __slots__ = ("_cancelling", "_expired", "_handle", "_task")

        def __init__(self, seconds: float) -> None:
            loop = _get_running_loop()
            task = _current_task(loop)
            if task is None:
                raise RuntimeError("timeout_scope must be used inside an asyncio task")
            self._task = task
            self._cancelling = task.cancelling()
            self._expired = False
            self._handle = loop.call_at(loop.time() + seconds, self._expire)

        def _expire(self) -> None:
            self._expired = True
            self._task.cancel()

        def __enter__(self) -> timeout_scope:
            return self

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            self._handle.cancel()
            if (
                self._expired
                and self._task.uncancel() <= self._cancelling
                and exc_type is asyncio.CancelledError
            ):
                raise TimeoutError from exc

else:  # pragma: no cover
    import anyio

    timeout_scope: Callable[[float], AbstractContextManager[object]] = anyio.fail_after
