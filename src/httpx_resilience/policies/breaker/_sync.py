"""A circuit breaker around a plain (synchronous) function: :meth:`CircuitBreaker.call_sync`.

:func:`call_sync` is the sync twin of
:meth:`~httpx_resilience.policies.breaker.CircuitBreaker.call`: a permit from
``acquire()``, the function, the outcome judged by the same rules (an
exception by ``is_failure_exception``, an ``httpx.Response`` by
``is_failure_response``) and recorded with the call's duration. It needs no
event loop; every state change happens under the machine's lock, so threads
can share one breaker.

With a Redis backend, ``call_sync`` makes the shared breaker's round trips
through the backend's sync client (``backends/_breaker_sync.py``); this
function is its fallback (Redis down with ``fail_mode="local"``, or a backend
built from a given async client, with no sync client): it runs on the local
machine, which shows the last state Redis reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from ...clock import Clock
from ._permit import BreakerPermit

__all__ = ["call_sync"]

T = TypeVar("T")


class _Breaker(Protocol):
    """What :func:`call_sync` uses of a breaker."""

    _clock: Clock

    def acquire(self) -> BreakerPermit: ...
    def is_failure_exception(self, exc: BaseException) -> bool: ...
    def is_failure_response(self, response: httpx.Response) -> bool: ...


def call_sync(
    breaker: _Breaker, func: Callable[..., T], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> T:
    """Run ``func(*args, **kwargs)`` under ``breaker``; see the module doc."""
    permit = breaker.acquire()
    clock = breaker._clock
    start = clock.monotonic()
    try:
        result = func(*args, **kwargs)
    except Exception as exc:
        duration = clock.monotonic() - start
        if breaker.is_failure_exception(exc):
            permit.failure(duration)
        else:
            permit.success(duration)
        raise
    except BaseException:  # KeyboardInterrupt, SystemExit: no outcome to record
        permit.release()
        raise
    duration = clock.monotonic() - start
    if isinstance(result, httpx.Response) and breaker.is_failure_response(result):
        permit.failure(duration)
    else:
        permit.success(duration)
    return result
