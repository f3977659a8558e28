"""``TracingMiddleware``: OpenTelemetry traces for an ``AsyncHTTPClient``.

A thin adapter over :class:`~httpx_resilience.observe.otel.TracingObserver`:
on a client's first request it adds the observer to the client's pipeline
(a span per logical request, a child span per attempt, ``traceparent`` on
each attempt) and shows the client's breaker transitions as span events.
Needs ``pip install 'httpx-resilience[otel]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._observed import ObserverMiddleware

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import TracerProvider

    from ..observe.otel import TracingObserver
    from ..observe.redactor import Redactor

__all__ = ["TracingMiddleware"]


class TracingMiddleware(ObserverMiddleware):
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

    observer: TracingObserver

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
        super().__init__(observer)
