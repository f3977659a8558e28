"""``TracingMiddleware``: OpenTelemetry traces for an ``AsyncHTTPClient``.

A thin adapter over :class:`~httpx_resilience.observe.otel.TracingObserver`:
on a client's first request it adds the observer to the client's pipeline
(a span per logical request, a child span per attempt, ``traceparent`` on
each attempt) and shows the client's breaker transitions as span events.
Needs ``pip install 'httpx-resilience[otel]'``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .base import Middleware
from .metrics import attach_observer

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import TracerProvider

    from ..client import AsyncHTTPClient
    from ..models import HTTPRequest
    from ..observe.otel import TracingObserver
    from ..observe.redactor import Redactor

__all__ = ["TracingMiddleware"]


class TracingMiddleware(Middleware):
    """Trace each request of the client and its attempts with OpenTelemetry.

    Args:
        tracer_provider: the provider; the global one when ``None``.
        redactor: what to hide in ``url.full`` and event texts.
        propagator: the context propagator; the global one when ``None``.
        observer: an existing :class:`TracingObserver` to use instead (the
            other arguments are then ignored).

    Raises:
        ImportError: opentelemetry-api is not installed (the message says how to install it).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        redactor: Redactor | None = None,
        propagator: TextMapPropagator | None = None,
        observer: TracingObserver | None = None,
    ) -> None:
        if observer is None:
            from ..observe.otel import TracingObserver

            observer = TracingObserver(tracer_provider, redactor=redactor, propagator=propagator)
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
        """End at once the spans of a request that ended without a report (cancelled, refused)."""
        reason = "cancelled" if isinstance(error, asyncio.CancelledError) else "abandoned"
        self.observer.abandon_current(reason)

    def __repr__(self) -> str:
        return f"TracingMiddleware({self.observer!r})"
