"""``MetricsMiddleware``: Prometheus metrics for an ``AsyncHTTPClient`` (seed 001's name).

A thin adapter over :class:`~httpx_resilience.observe.prometheus.PrometheusObserver`:
on a client's first request it adds the observer to the client's pipeline and
exports the client's circuit breaker state, so per-attempt data (retries,
attempt durations, limiter waits) is measured where it happens, once.
Needs ``pip install 'httpx-resilience[prometheus]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._observed import ObserverMiddleware, attach_observer

if TYPE_CHECKING:
    from ..observe.prometheus import PrometheusObserver

__all__ = ["MetricsMiddleware", "attach_observer"]


class MetricsMiddleware(ObserverMiddleware):
    """Export the client's requests, retries, latencies and breaker state to Prometheus.

    See :mod:`httpx_resilience.observe.prometheus` for the metrics and labels.
    One middleware may serve several clients; several middlewares on the
    same registry and namespace share the metric families, and so do
    :class:`PrometheusObserver` and :class:`~httpx_resilience.StoreClient`
    (``namespace="store_api"``): one definition of each metric, one breaker
    state encoding (0 closed, 1 open, 2 half-open).

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

    observer: PrometheusObserver

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
        super().__init__(observer)
