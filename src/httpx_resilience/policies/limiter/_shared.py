"""A limiter's path through a shared backend (``backend=``): one round trip per grant.

The backend's script takes the tokens and answers at once: granted now,
*reserved* for a later time (the caller sleeps until then and goes, without
asking again), or refused because that time is beyond ``max_wait``. So a
grant costs exactly one round trip even when it waits, waiting callers never
poll, and the backend's own record (the bucket's TAT, the window's log) is
the queue: callers are served in the order they reached it, across every
process. A caller cancelled while it sleeps leaves its reserved slot unused
(the shared rate is never exceeded; it can only be under-used).

The sync :meth:`~httpx_resilience.RateLimiter.try_acquire` cannot make a
round trip: it answers ``False`` and the pipeline awaits ``acquire``.

A thread's ``acquire_sync`` makes the same single round trip with the
backend's sync client (a :class:`~httpx_resilience.RedisBackend` runs the same
scripts through a ``redis.Redis`` client of its own; see
``backends/_redis_sync.py``) and sleeps the calling thread only. A backend
built from a given ``redis.asyncio`` client has no URL to build a sync client
from: its threads then wait on the limiter's local state (this process's
share only), as in ``fail_mode="local"``.

A pause (``Retry-After``, rate-limit headers) applies in this process at
once, as without a backend, and is written to the backend in the background
(from a thread: at once, through the sync client);
every script call also passes this process's pause, so a grant never lands
inside it. When the backend is down, ``fail_mode`` decides: ``"local"`` waits
on the limiter's in-process state (its FIFO queue), ``"open"`` grants,
``"closed"`` raises :class:`~httpx_resilience.SharedStateUnavailableError`.

While the testing switch is on (``httpx_resilience.testing``) every grant is
immediate: the script is asked not to reserve, and its answer is not waited on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ...backends._contract import Grant, SharedBackend
from ...backends._errors import BackendDown, on_backend_down
from ...clock import Clock, sleep_sync
from ...exceptions import ConfigurationError, RateLimiterTimeout
from .._testing_mode import active
from ._allowance import EPS
from ._base import deadline_error

__all__ = ["SharedLimit", "share"]

_log = logging.getLogger("httpx_resilience.limiter")


class _Owner(Protocol):
    """What the shared path reads of its limiter (a ``QueuedLimiter``)."""

    _clock: Clock
    _max_wait: float | None
    _paused_until: float

    def _timeout(self, tokens: int, waited: float, needed: float) -> RateLimiterTimeout: ...

    async def _acquire_local(self, tokens: int) -> float: ...

    def _acquire_sync_local(self, tokens: int, timeout: float | None = None) -> float: ...

    def _take_shared_sync(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant | None: ...

    async def _take_shared(
        self, backend: SharedBackend, name: str, tokens: int, horizon: float | None, paused: float
    ) -> Grant: ...


class SharedLimit:
    """The shared half of one limiter: its backend and its name there.

    Args:
        owner: the limiter (its clock, ``max_wait``, local pause, local path and
            backend operation).
        backend: where the state is shared.
        name: the limiter's name in the backend (its keys' hash tag).
    """

    __slots__ = ("_owner", "_tasks", "backend", "name")

    def __init__(self, owner: _Owner, backend: SharedBackend, name: str) -> None:
        self._owner = owner
        self.backend = backend
        self.name = name
        self._tasks: set[asyncio.Task[None]] = set()

    async def acquire(self, tokens: int) -> float:
        """Wait until ``tokens`` are granted by the backend; the seconds waited."""
        owner = self._owner
        clock = owner._clock
        start = clock.monotonic()
        if active() is not None:  # the testing switch: every wait is zero
            with contextlib.suppress(BackendDown):
                await owner._take_shared(self.backend, self.name, tokens, 0.0, 0.0)
            return 0.0
        max_wait = owner._max_wait
        paused = self._ahead(tokens, start, max_wait, False)
        try:
            grant = await owner._take_shared(self.backend, self.name, tokens, max_wait, paused)
        except BackendDown as down:
            if on_backend_down(self.backend.fail_mode, down) == "open":
                return 0.0
            return await owner._acquire_local(tokens)
        if not grant.granted:
            raise owner._timeout(tokens, clock.monotonic() - start, grant.wait)
        slept = grant.wait > EPS
        if slept:
            await clock.sleep(grant.wait)
        # A pause this process learned while it slept is waited out (within max_wait).
        while (left := self._pause_left(tokens, start, max_wait, False)) > 0.0:
            await clock.sleep(left)
            slept = True
        # Seconds waited for the permit: 0 when granted at once (the round trip is
        # not a wait), as on the local fast path.
        return clock.monotonic() - start if slept else 0.0

    def acquire_sync(self, tokens: int, timeout: float | None = None) -> float:
        """:meth:`acquire` for a thread, through the backend's sync path (see the module doc);
        ``timeout`` (the caller's deadline) bounds the wait besides ``max_wait``."""
        owner = self._owner
        clock = owner._clock
        start = clock.monotonic()
        if active() is not None:  # the testing switch: every wait is zero
            with contextlib.suppress(BackendDown):
                owner._take_shared_sync(self.backend, self.name, tokens, 0.0, 0.0)
            return 0.0
        bound, by_timeout = owner._max_wait, False
        if timeout is not None and (bound is None or timeout < bound):
            bound, by_timeout = max(0.0, timeout), True
        paused = self._ahead(tokens, start, bound, by_timeout)
        try:
            grant = owner._take_shared_sync(self.backend, self.name, tokens, bound, paused)
        except BackendDown as down:
            if on_backend_down(self.backend.fail_mode, down) == "open":
                return 0.0
            grant = None
        if grant is None:  # down (fail_mode="local"), or no sync client: the local state
            return owner._acquire_sync_local(tokens, timeout)
        if not grant.granted:
            raise self._late(tokens, clock.monotonic() - start, grant.wait, bound, by_timeout)
        slept = grant.wait > EPS
        if slept:
            sleep_sync(clock, grant.wait)
        while (left := self._pause_left(tokens, start, bound, by_timeout)) > 0.0:
            sleep_sync(clock, left)
            slept = True
        return clock.monotonic() - start if slept else 0.0

    def _late(
        self, tokens: int, waited: float, needed: float, bound: float | None, by_timeout: bool
    ) -> Exception:
        """Past ``max_wait`` (:class:`RateLimiterTimeout`) or a caller's own ``timeout``."""
        if by_timeout and bound is not None:
            return deadline_error(tokens, waited + needed, bound)
        return self._owner._timeout(tokens, waited, needed)

    def _ahead(self, tokens: int, start: float, bound: float | None, by_timeout: bool) -> float:
        """This process's pause left; refused at once when it lasts beyond ``bound``."""
        paused = max(0.0, self._owner._paused_until - start)
        if bound is not None and paused > bound + EPS:
            raise self._late(tokens, 0.0, paused, bound, by_timeout)  # known here: no round trip
        return paused

    def _pause_left(
        self, tokens: int, start: float, bound: float | None, by_timeout: bool
    ) -> float:
        """Seconds of this process's pause still to wait (0: go); refused past ``bound``."""
        owner = self._owner
        now = owner._clock.monotonic()
        left = owner._paused_until - now
        if left <= EPS:
            return 0.0
        if bound is not None and now + left - start > bound + EPS:
            raise self._late(tokens, now - start, left, bound, by_timeout)
        return left

    def share_pause(self, seconds: float) -> None:
        """Write a pause of ``seconds`` to the backend: in the background from an event loop,
        at once (one round trip of the sync client) from a thread without one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                self.backend.pause_sync(self.name, seconds)
            except BackendDown:
                _log.debug("limiter %r: pause not shared, the backend is down", self.name)
            return
        task = loop.create_task(self._write_pause(seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_pause(self, seconds: float) -> None:
        try:
            await self.backend.pause(self.name, seconds)
        except BackendDown:
            # The pause holds in this process; others learn of it from their own 429s.
            _log.debug("limiter %r: pause not shared, the backend is down", self.name)

    async def drain(self) -> None:
        """Wait for the pauses being written (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)


def share(owner: _Owner, backend: object, name: object) -> SharedLimit:
    """``owner``'s shared half on ``backend`` under ``name``, both checked."""
    if not isinstance(backend, SharedBackend):
        raise ConfigurationError(
            f"backend must be a RedisBackend or MemoryBackend, got {backend!r}", field="backend"
        )
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"name must be a non-empty string, got {name!r}", field="name")
    return SharedLimit(owner, backend, name)
