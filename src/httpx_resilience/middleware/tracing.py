"""``TracingMiddleware``: OpenTelemetry traces and metrics for an ``AsyncHTTPClient``.

A thin adapter over :class:`~httpx_resilience.observe.otel.TracingObserver`
and :class:`~httpx_resilience.observe.otel_metrics.MetricsObserver`: on a
client's first request it adds them to the client's pipeline (an INTERNAL
span per logical request, a CLIENT span per attempt, ``traceparent`` on each
attempt; ``http.client.request.duration`` and the ``resilience.*``
instruments) and records the client's breaker transitions. Needs
``pip install 'httpx-resilience[otel]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._observed import ObserverMiddleware, abandon_reason, attach_observer

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import TracerProvider

    from ..client import AsyncHTTPClient
    from ..client._sync_client import HTTPClient
    from ..models import HTTPRequest
    from ..observe.otel import TracingObserver
    from ..observe.otel_metrics import MetricsObserver
    from ..observe.redactor import Redactor

__all__ = ["TracingMiddleware"]


class TracingMiddleware(ObserverMiddleware):
    """Trace each request of the client and its attempts, and measure them, with OpenTelemetry.

    Args:
        tracer_provider: the provider; the global one when ``None``.
        meter_provider: the meter provider; the global one when ``None``.
        metrics: also record metrics (a :class:`MetricsObserver`, kept in
            :attr:`metrics_observer`); ``False`` for spans only.
        redactor: what to hide in ``url.full`` and event texts.
        propagator: the context propagator; the global one when ``None``.
        observer: an existing :class:`TracingObserver` to use instead (the
            tracing arguments are then ignored).

    Raises:
        ImportError: opentelemetry-api is not installed (the message says how to install it).
    """

    observer: TracingObserver
    metrics_observer: MetricsObserver | None

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        metrics: bool = True,
        redactor: Redactor | None = None,
        propagator: TextMapPropagator | None = None,
        observer: TracingObserver | None = None,
    ) -> None:
        if observer is None:
            from ..observe.otel import TracingObserver

            observer = TracingObserver(tracer_provider, redactor=redactor, propagator=propagator)
        super().__init__(observer)
        self.metrics_observer = None
        if metrics:
            from ..observe.otel_metrics import MetricsObserver

            self.metrics_observer = MetricsObserver(meter_provider)

    # The async hooks are ObserverMiddleware's: they call the sync ones below.

    def process_request_sync(
        self, request: HTTPRequest, client: AsyncHTTPClient | HTTPClient
    ) -> HTTPRequest:
        """Attach the observers (and watch the breaker) on the client's first request."""
        metrics = self.metrics_observer
        if metrics is not None and attach_observer(client, metrics):
            breaker = getattr(client, "circuit_breaker", None)
            if breaker is not None:
                metrics.watch_breaker(breaker)
        return super().process_request_sync(request, client)

    def process_error_sync(self, error: BaseException, request: HTTPRequest) -> None:
        """End a request that ended without a report, for the spans and the metrics."""
        super().process_error_sync(error, request)
        if self.metrics_observer is not None:
            self.metrics_observer.abandon_current(abandon_reason(error))
