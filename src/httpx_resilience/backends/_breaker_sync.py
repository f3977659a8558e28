"""A circuit breaker shared through Redis, called from a thread: ``call_sync``.

:func:`call_shared_sync` is what
:meth:`CircuitBreaker.call_sync <httpx_resilience.CircuitBreaker.call_sync>`
runs for a breaker with a :class:`~httpx_resilience.RedisBackend`: the same
round trips as the async ``SharedBreaker.call`` — ``breaker_admit`` before
the function, ``breaker_record`` after it unless a quick success of a clean
CLOSED breaker makes it needless, ``breaker_release`` for a probe that ended
without an outcome — through the backend's sync ``redis.Redis`` client
(``_redis_sync``), so no event loop is touched and only the calling thread
waits on Redis (within the backend's ``timeout``). Each reply is read and
mirrored into the local machine by the shared breaker's own code.

While the backend is down, ``fail_mode`` decides as on the async path. A
backend built from a given ``redis.asyncio`` client has no sync client: the
call then runs on the local machine, which shows the last state Redis
reported (``policies/breaker/_sync.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from ..exceptions import CircuitBreakerOpenError
from ..policies.breaker._sync import call_sync
from ._errors import BackendDown, on_backend_down

__all__ = ["call_shared_sync"]

T = TypeVar("T")
_REFUSED = 0


class _Shared(Protocol):
    """What this module uses of a ``SharedBreaker`` (``_breaker`` imports this module)."""

    _backend: Any
    _breaker: Any
    _keys: tuple[str, str, str]
    _admit_args: list[str | int | float]
    _record_args: list[str | int | float]

    _replies: int

    def _admitted(self, reply: Any, sent: int) -> tuple[int, int, bool, bool]: ...
    def _recorded(self, reply: Any, sent: int) -> None: ...


def call_shared_sync(
    shared: _Shared, func: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> T:
    """Run ``func(*args, **kwargs)`` under the shared breaker, from a thread (module doc)."""
    b = shared._breaker
    backend = shared._backend
    lease = os.urandom(8).hex()  # the probe lease's id, used if a probe is granted
    admit_args = list(shared._admit_args)
    admit_args[2] = lease
    sent = shared._replies
    try:
        reply = backend._sync.run("breaker_admit", shared._keys[:2], admit_args)
    except BackendDown as down:
        if on_backend_down(backend.fail_mode, down) == "open":
            return func(*args, **kwargs)
        reply = None
    if reply is None:  # down with fail_mode="local", or no sync client: the local machine
        return call_sync(b, func, args, kwargs)
    verdict, gen, probe, clean = shared._admitted(reply, sent)
    if verdict == _REFUSED:
        raise CircuitBreakerOpenError(b.name, b._machine.retry_in(b._clock.monotonic()))
    lease = lease if probe else ""
    clock = b._clock
    start = clock.monotonic()
    try:
        result = func(*args, **kwargs)
    except Exception as exc:
        _record(shared, gen, lease, b.is_failure_exception(exc), clock.monotonic() - start)
        raise
    except BaseException:  # interrupted: no outcome; a probe gives its lease back
        if lease:
            with contextlib.suppress(BackendDown):  # else the lease expires on its own
                backend._sync.run("breaker_release", shared._keys[1:2], [lease])
        raise
    duration = clock.monotonic() - start
    failed = isinstance(result, httpx.Response) and b.is_failure_response(result)
    if failed or not clean or duration >= b._machine.slow_after:
        _record(shared, gen, lease, failed, duration)
    return result


def _record(shared: _Shared, gen: int, lease: str, failed: bool, duration: float) -> None:
    """Record an outcome; a backend fault is absorbed (the call already has its answer)."""
    b = shared._breaker
    backend = shared._backend
    slow = duration >= b._machine.slow_after
    args: list[str | int | float] = [gen, lease, int(failed), int(slow), *shared._record_args]
    sent = shared._replies
    try:
        reply = backend._sync.run("breaker_record", shared._keys, args)
    except BackendDown:
        reply = None
    if reply is None:
        if backend.fail_mode == "local":  # the local breaker learns it meanwhile
            b._record(b._machine.generation, False, failed, duration)
        return
    shared._recorded(reply, sent)
