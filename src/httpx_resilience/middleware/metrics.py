"""``MetricsMiddleware``: Prometheus metrics for an ``AsyncHTTPClient`` (seed 001's name).

A thin adapter over :class:`~httpx_resilience.observe.prometheus.PrometheusObserver`:
on a client's first request it adds the observer to the client's pipeline and
exports the client's circuit breaker state, so per-attempt data (retries,
attempt durations, limiter waits) is measured where it happens, once.
Needs ``pip install 'httpx-resilience[prometheus]'``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .base import Middleware

if TYPE_CHECKING:
    from ..client import AsyncHTTPClient
    from ..models import HTTPRequest
    from ..observe.prometheus import PrometheusObserver

__all__ = ["MetricsMiddleware", "attach_observer"]


def attach_observer(client: Any, observer: Any) -> bool:
    """Add ``observer`` to ``client.transport.observers`` once; whether it is attached."""
    transport = getattr(client, "transport", None)
    observers = getattr(transport, "observers", None)
    if not isinstance(observers, tuple):
        return False
    if observer not in observers:
        transport.observers = (*observers, observer)  # type: ignore[union-attr]
    return True


class MetricsMiddleware(Middleware):
    """Export the client's requests, retries, latencies and breaker state to Prometheus.

    See :mod:`httpx_resilience.observe.prometheus` for the metrics and labels.
    One middleware may serve several clients; several middlewares on the
    same registry and namespace share the metric families.

    Args:
        registry: a ``prometheus_client.CollectorRegistry``; the default
            registry when ``None``.
        namespace: the metric name prefix.
        observer: an existing :class:`PrometheusObserver` to use instead
            (``registry`` and ``namespace`` are then ignored).

    Raises:
        ImportError: prometheus-client is not installed (the message says how to install it).

    Example::

        AsyncHTTPClient("https://store.example", middlewares=[MetricsMiddleware()],
                        circuit_breaker=CircuitBreaker(5, 30, name="store_api"))
    """

    def __init__(
        self,
        registry: Any = None,
        *,
        namespace: str = "httpx_resilience",
        observer: PrometheusObserver | None = None,
    ) -> None:
        if observer is None:
            from ..observe.prometheus import PrometheusObserver

            observer = PrometheusObserver(registry, namespace)
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
        """Count a request that ended without a report (cancelled, refused) exactly once."""
        reason = "cancelled" if isinstance(error, asyncio.CancelledError) else "abandoned"
        self.observer.abandon_current(reason)

    def __repr__(self) -> str:
        return f"MetricsMiddleware({self.observer!r})"
