"""The shared part of the middlewares that plug an observer into a client's pipeline."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from .base import Middleware

if TYPE_CHECKING:
    from ..client import AsyncHTTPClient
    from ..models import HTTPRequest
    from ..policies.breaker import CircuitBreaker

__all__ = ["ObserverMiddleware", "attach_observer"]


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
        transport.observers = (*observers, observer)  # type: ignore[union-attr]
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
        """Attach the observer (and watch the breaker) on the client's first request."""
        if attach_observer(client, self.observer):
            breaker = getattr(client, "circuit_breaker", None)
            if breaker is not None:
                self.observer.watch_breaker(breaker)
        return request

    async def process_error(self, error: BaseException, request: HTTPRequest) -> None:
        """End a request that ended without a report (cancelled, refused) exactly once."""
        reason = "cancelled" if isinstance(error, asyncio.CancelledError) else "abandoned"
        self.observer.abandon_current(reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.observer!r})"
