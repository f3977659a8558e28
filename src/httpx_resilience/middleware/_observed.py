"""The shared part of the middlewares that plug an observer into a client's pipeline."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Protocol

from .base import Middleware

if TYPE_CHECKING:
    from ..client import AsyncHTTPClient
    from ..client._sync_client import HTTPClient
    from ..models import HTTPRequest
    from ..policies.breaker import CircuitBreaker

__all__ = ["ObserverMiddleware", "abandon_reason", "attach_observer"]


_attach_lock = threading.Lock()


def abandon_reason(error: BaseException) -> str:
    """Why a request ended unreported: cancelled (a task, or Ctrl-C in a thread) or abandoned."""
    cancelled = isinstance(error, (asyncio.CancelledError, KeyboardInterrupt))
    return "cancelled" if cancelled else "abandoned"


class _WatchingObserver(Protocol):
    def __call__(self, event: Any) -> None: ...

    def watch_breaker(self, breaker: CircuitBreaker) -> object: ...

    def abandon_current(self, reason: str = ...) -> object: ...


def attach_observer(client: Any, observer: Any) -> bool:
    """Add ``observer`` to ``client.transport.observers`` once; whether it is attached."""
    transport = getattr(client, "transport", None)
    observers = getattr(transport, "observers", None)
    if not isinstance(observers, tuple):
        return False
    if observer not in observers:
        with _attach_lock:  # threads of one HTTPClient: no observer lost to a race
            current = transport.observers  # type: ignore[union-attr]
            if observer not in current:
                transport.observers = (*current, observer)  # type: ignore[union-attr]
    return True


class ObserverMiddleware(Middleware):
    """Attach :attr:`observer` to the client's pipeline on its first request and
    watch its circuit breaker; close, at once, a request that ended unreported.

    Args:
        observer: the observer to attach (subclasses build it from their own arguments).
    """

    def __init__(self, observer: _WatchingObserver) -> None:
        self.observer = observer

    async def process_request(
        self, request: HTTPRequest, client: AsyncHTTPClient
    ) -> HTTPRequest:
        return self.process_request_sync(request, client)

    async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
        self.process_error_sync(error, request)

    def process_request_sync(
        self, request: HTTPRequest, client: AsyncHTTPClient | HTTPClient
    ) -> HTTPRequest:
        """Attach the observer (and watch the breaker) on the client's first request.

        The logic of both clients: attaching is a tuple swap, nothing waits."""
        if attach_observer(client, self.observer):
            breaker = getattr(client, "circuit_breaker", None)
            if breaker is not None:
                self.observer.watch_breaker(breaker)
        return request

    def process_error_sync(self, error: BaseException, request: HTTPRequest) -> None:
        """End a request that ended without a report (cancelled, refused) exactly once."""
        self.observer.abandon_current(abandon_reason(error))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.observer!r})"
