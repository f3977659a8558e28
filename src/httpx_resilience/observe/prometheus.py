"""``PrometheusObserver``: the pipeline's events as Prometheus metrics.

Needs ``prometheus-client``: ``pip install 'httpx-resilience[prometheus]'``.
With the default namespace ``httpx_resilience`` it exports:

=============================================  =========  ==================================
metric                                         type       labels
=============================================  =========  ==================================
``<ns>_requests_total``                        counter    service, method, status_class,
                                                          outcome
``<ns>_request_duration_seconds``              histogram  service, method, outcome
``<ns>_attempt_duration_seconds``              histogram  service, status_class
``<ns>_retries_total``                         counter    service, reason
``<ns>_requests_in_flight``                    gauge      service
``<ns>_circuit_breaker_state``                 gauge      breaker (0 closed, 1 open,
                                                          2 half-open)
``<ns>_circuit_breaker_transitions_total``     counter    breaker, state
``<ns>_rate_limiter_wait_seconds``             histogram  host
``<ns>_bulkhead_rejections_total``             counter    host
``<ns>_hedges_total``                          counter    service
``<ns>_budget_refusals_total``                 counter    host, spend (retry, hedge)
``<ns>_fallbacks_total``                       counter    host, error (the failure's class)
``<ns>_throttle_rejections_total``             counter    host
``<ns>_backend_fallbacks_total``               counter    backend
``<ns>_backend_in_fallback``                   gauge      backend (1 while Redis is away)
``<ns>_backend_script_seconds``                histogram  script, ok
=============================================  =========  ==================================

The backend metrics come from a shared backend's own events: pass the
observer to it as well (``RedisBackend(url, observers=[obs])``).

``status_class`` is ``2xx``/``3xx``/``4xx``/``5xx`` or ``error`` (no response);
``outcome`` is ``success``, ``failure``, ``cancelled`` or ``abandoned`` (ended
without a report, for instance refused by the rate limiter). Labels never hold
a URL path; each label keeps at most ``max_label_values`` distinct values
(200 by default) and folds the rest into ``other``, so cardinality is bounded.

The breaker state gauge has one encoding, :data:`STATE_VALUES`: 0 closed,
1 open, 2 half-open (alert on ``== 1``; the transitions counter tells every
change). Seed 000's ``store_api_circuit_breaker_state`` is this gauge for
``namespace="store_api"``: :class:`~httpx_resilience.StoreClient` exports its
breaker through ``PrometheusObserver(registry, namespace="store_api")``, so a
client and an observer (or ``MetricsMiddleware``) of that namespace share one
registry, one definition and one series per breaker (``breaker="store-api"``).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..backends._events import BackendFallbackEntered, BackendFallbackLeft, BackendScriptRan
from ..config import HTTP_METHODS
from ..exceptions import ConfigurationError
from ..policies.fallback import FallbackServed
from ..policies.throttle import ThrottleRejected
from .events import (
    AttemptFailed,
    AttemptStarted,
    BreakerTransitioned,
    BudgetRefused,
    BulkheadRejected,
    Event,
    HedgeFired,
    LimiterWaited,
    RequestFinished,
    RetryScheduled,
)
from .logging import RequestTracker

if TYPE_CHECKING:
    from ..policies.breaker import BreakerTransition, CircuitBreaker

__all__ = ["INSTALL_HINT", "STATE_VALUES", "PrometheusObserver"]

INSTALL_HINT = "pip install 'httpx-resilience[prometheus]'"

OTHER = "other"
#: The breaker state gauge's values, by ``CircuitState`` value; the one
#: encoding of every ``<ns>_circuit_breaker_state`` (StoreClient's included).
STATE_VALUES: Mapping[str, int] = {"closed": 0, "open": 1, "half_open": 2}
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _prometheus_client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(f"Prometheus metrics need prometheus-client: {INSTALL_HINT}") from exc
    return prometheus_client


class _Cap:
    """Keep at most ``limit`` distinct values of one label; later ones become ``other``."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        seen = self.seen
        if value in seen:
            return value
        if len(seen) >= self.limit:
            return OTHER
        seen.add(value)
        return value


class _Metrics:
    """The metric families of one (registry, namespace), shared by its observers."""

    def __init__(self, registry: Any, namespace: str, max_label_values: int) -> None:
        pc = _prometheus_client()
        kw: dict[str, Any] = {"namespace": namespace, "registry": registry}
        self.requests = pc.Counter(
            "requests_total", "Logical requests by outcome.",
            ["service", "method", "status_class", "outcome"], **kw,
        )
        self.request_duration = pc.Histogram(
            "request_duration_seconds", "Logical request duration, retries and waits included.",
            ["service", "method", "outcome"], buckets=DURATION_BUCKETS, **kw,
        )
        self.attempt_duration = pc.Histogram(
            "attempt_duration_seconds", "Duration of one attempt.",
            ["service", "status_class"], buckets=DURATION_BUCKETS, **kw,
        )
        self.retries = pc.Counter(
            "retries_total", "Retries scheduled, by reason (a status or an error type).",
            ["service", "reason"], **kw,
        )
        self.in_flight = pc.Gauge(
            "requests_in_flight", "Logical requests in progress.", ["service"], **kw
        )
        self.breaker_state = pc.Gauge(
            "circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            ["breaker"], **kw,
        )
        self.breaker_transitions = pc.Counter(
            "circuit_breaker_transitions_total", "Circuit breaker transitions, by new state.",
            ["breaker", "state"], **kw,
        )
        self.limiter_wait = pc.Histogram(
            "rate_limiter_wait_seconds", "Time spent waiting for a rate-limiter permit.",
            ["host"], buckets=WAIT_BUCKETS, **kw,
        )
        self.bulkhead_rejections = pc.Counter(
            "bulkhead_rejections_total", "Requests refused by a full bulkhead.", ["host"], **kw
        )
        self.hedges = pc.Counter(
            "hedges_total", "Hedged attempts started.", ["service"], **kw
        )
        self.budget_refusals = pc.Counter(
            "budget_refusals_total", "Retries or hedges the retry budget refused.",
            ["host", "spend"], **kw,
        )
        self.fallbacks = pc.Counter(
            "fallbacks_total", "Failed requests answered by a fallback.", ["host", "error"], **kw
        )
        self.throttled = pc.Counter(
            "throttle_rejections_total", "Attempts the adaptive throttle refused locally.",
            ["host"], **kw,
        )
        self.backend_fallbacks = pc.Counter(
            "backend_fallbacks_total", "Times a shared backend stopped answering.",
            ["backend"], **kw,
        )
        self.backend_in_fallback = pc.Gauge(
            "backend_in_fallback", "1 while a shared backend is unreachable.", ["backend"], **kw
        )
        self.backend_script = pc.Histogram(
            "backend_script_seconds", "Round trip of one shared-state script.",
            ["script", "ok"], buckets=WAIT_BUCKETS, **kw,
        )
        self.service = _Cap(max_label_values)
        self.host = _Cap(max_label_values)
        self.breaker = _Cap(max_label_values)
        self.reason = _Cap(max_label_values)
        # labels() takes a lock and builds a key on every call: cache the children.
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


_BUNDLES: weakref.WeakKeyDictionary[Any, dict[str, _Metrics]] = weakref.WeakKeyDictionary()


def _metrics_for(registry: Any, namespace: str, max_label_values: int) -> _Metrics:
    per_registry = _BUNDLES.setdefault(registry, {})
    bundle = per_registry.get(namespace)
    if bundle is None:
        try:
            bundle = _Metrics(registry, namespace, max_label_values)
        except ValueError as exc:  # "Duplicated timeseries in CollectorRegistry"
            raise ConfigurationError(
                f"Metrics named {namespace}_* are already registered in this registry by "
                f"something else ({exc}); pass another namespace or registry",
                field="namespace",
            ) from exc
        per_registry[namespace] = bundle
    return bundle


class _Flight:
    __slots__ = ("attempt_t0", "method", "service", "t0")

    def __init__(self, service: str, method: str, t0: float) -> None:
        self.service = service
        self.method = method
        self.t0 = t0
        self.attempt_t0: float | None = t0  # None once the attempt's duration is recorded


def _status_class(status: int | None) -> str:
    return "error" if status is None else f"{status // 100}xx"


def _reason_label(reason: str) -> str:
    """``"HTTP 503 Service Unavailable"`` → ``"503"``; ``"ConnectError: ..."`` → its class."""
    if reason.startswith("HTTP "):
        return reason[5:].split(" ", 1)[0]
    return reason.split(":", 1)[0].strip()[:64] or "unknown"


class PrometheusObserver:
    """Record the pipeline's events as Prometheus metrics (see the module docs for the list).

    Use it as an observer (``ResilientTransport(observers=[obs])`` or
    ``AsyncHTTPClient(observers=[obs])``) and call :meth:`watch_breaker` for
    each circuit breaker whose state should be exported. Observers created
    for the same registry and namespace share the metric families and the
    label caps (the first one's ``max_label_values`` applies), so one per
    client is fine. Meant for one event loop, like the breaker.

    Args:
        registry: a ``prometheus_client.CollectorRegistry``; the default
            (global) registry when ``None``.
        namespace: the metric name prefix (``"store_api"`` gives
            ``store_api_circuit_breaker_state``).
        max_label_values: distinct values kept per label before folding into ``other``.
        max_in_flight: requests tracked at once for the in-flight gauge.

    Raises:
        ImportError: prometheus-client is not installed (the message says how to install it).
        ConfigurationError: metrics with these names already exist in ``registry``
            but were not created by this class.
    """

    def __init__(
        self,
        registry: Any = None,
        namespace: str = "httpx_resilience",
        *,
        max_label_values: int = 200,
        max_in_flight: int = 10_000,
    ) -> None:
        pc = _prometheus_client()
        self.registry = registry if registry is not None else pc.REGISTRY
        self.namespace = namespace
        self.metrics = _metrics_for(self.registry, namespace, max_label_values)
        self._tracker: RequestTracker[_Flight] = RequestTracker(self._abandoned, max_in_flight)
        self._watched: dict[int, CircuitBreaker] = {}

    # -- breakers ----------------------------------------------------------------------

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Export ``breaker``'s state (and its per-host children's) from now on.

        Sets the gauge to the current state at once; idempotent.
        """
        if id(breaker) in self._watched:
            return
        self._watched[id(breaker)] = breaker
        breaker.add_listener(self._on_transition)
        if breaker.scope == "global":
            self._set_state(breaker.name, breaker.state.value)
        for name, child in breaker.children().items():
            self._set_state(name, child.state.value)

    def _on_transition(self, transition: BreakerTransition) -> None:
        self._transition(transition.name, transition.new.value)

    def _transition(self, name: str, new_state: str) -> None:
        m = self.metrics
        label = m.breaker(name)
        self._set_state(name, new_state)
        m.child(m.breaker_transitions, label, new_state).inc()

    def _set_state(self, name: str, state: str) -> None:
        m = self.metrics
        m.child(m.breaker_state, m.breaker(name)).set(STATE_VALUES.get(state, -1))

    # -- events ------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Update the metrics for ``event``."""
        m = self.metrics
        if type(event) is AttemptStarted:
            flight = self._tracker.get(event.request_id)
            now = time.perf_counter()
            if flight is None:
                service = m.service(event.service or event.host)
                method = event.method if event.method in HTTP_METHODS else "_OTHER"
                self._tracker.start(event.request_id, _Flight(service, method, now))
                m.child(m.in_flight, service).inc()
            else:
                flight.attempt_t0 = now
        elif type(event) is RequestFinished:
            flight = self._tracker.finish(event.request_id)
            status_class = _status_class(event.status_code)
            if flight is not None:
                service, method = flight.service, flight.method
                m.child(m.in_flight, service).dec()
                if flight.attempt_t0 is not None:  # the last attempt did not report a failure
                    m.child(m.attempt_duration, service, status_class).observe(
                        time.perf_counter() - flight.attempt_t0
                    )
            else:  # started before this observer was attached
                service = m.service(event.service or event.host)
                method = event.method if event.method in HTTP_METHODS else "_OTHER"
            m.child(m.requests, service, method, status_class, event.outcome).inc()
            m.child(m.request_duration, service, method, event.outcome).observe(event.elapsed)
        elif type(event) is AttemptFailed:
            flight = self._tracker.get(event.request_id)
            if flight is not None:
                flight.attempt_t0 = None  # recorded here; RequestFinished must not time it again
            service = flight.service if flight is not None else m.service(event.host)
            m.child(m.attempt_duration, service, _status_class(event.status_code)).observe(
                event.duration
            )
        elif type(event) is RetryScheduled:
            service = self._service_of(event.request_id, event.host)
            m.child(m.retries, service, m.reason(_reason_label(event.reason))).inc()
        elif type(event) is LimiterWaited:
            m.child(m.limiter_wait, m.host(event.host)).observe(event.waited)
        elif type(event) is BulkheadRejected:
            m.child(m.bulkhead_rejections, m.host(event.host)).inc()
        elif type(event) is HedgeFired:
            m.child(m.hedges, self._service_of(event.request_id, event.host)).inc()
        elif type(event) is BreakerTransitioned:
            self._transition(event.name, event.new_state)
        else:
            self._other(event)

    def _other(self, event: object) -> None:
        """The events of the budget, the fallback, the throttle and a shared backend."""
        m = self.metrics
        if type(event) is BudgetRefused:
            m.child(m.budget_refusals, m.host(event.host), event.spend).inc()
        elif type(event) is FallbackServed:
            m.child(m.fallbacks, m.host(event.host), m.reason(event.error_type)).inc()
        elif type(event) is ThrottleRejected:
            m.child(m.throttled, m.host(event.host)).inc()
        elif type(event) is BackendScriptRan:
            ok = "true" if event.ok else "false"
            m.child(m.backend_script, m.reason(event.script), ok).observe(event.latency)
        elif type(event) is BackendFallbackEntered:
            m.child(m.backend_fallbacks, m.host(event.backend)).inc()
            m.child(m.backend_in_fallback, m.host(event.backend)).set(1)
        elif type(event) is BackendFallbackLeft:
            m.child(m.backend_in_fallback, m.host(event.backend)).set(0)

    def _service_of(self, request_id: str | None, host: str) -> str:
        flight = self._tracker.get(request_id)
        return flight.service if flight is not None else self.metrics.service(host)

    def _abandoned(self, flight: _Flight, reason: str) -> None:
        m = self.metrics
        m.child(m.in_flight, flight.service).dec()
        m.child(m.requests, flight.service, flight.method, "error", reason).inc()
        m.child(m.request_duration, flight.service, flight.method, reason).observe(
            time.perf_counter() - flight.t0
        )

    def abandon_current(self, reason: str = "abandoned") -> int:
        """Count the current task's unfinished requests as ``reason`` (used by middlewares)."""
        return self._tracker.abandon_current(reason)

    def __repr__(self) -> str:
        return (
            f"PrometheusObserver(namespace={self.namespace!r}, "
            f"in_flight={len(self._tracker)}, breakers={len(self._watched)})"
        )
