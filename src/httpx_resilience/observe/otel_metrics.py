"""``MetricsObserver``: OpenTelemetry metrics from the pipeline's events.

Needs the OpenTelemetry API: ``pip install 'httpx-resilience[otel]'`` (the
SDK, exporters and views are the application's choice).

``http.client.request.duration`` follows the HTTP metric conventions: one
measurement per attempt, that is per physical request, as the conventions'
CLIENT span is (its value is that span's duration); ``http.request.resend_count``
is a span attribute only, so the metric does not carry it. The ``resilience.*``
instruments, in the spirit of Polly's, count what the policies did: attempts,
retries by reason, breaker transitions (and the state), limiter waits,
hedges, bulkhead and budget refusals, fallbacks served, throttle
rejections, and a shared-state backend's fallbacks and script round trips.
The table of names, units and attributes is in ``docs/observability.md``
(section *OpenTelemetry metrics*).

``network.protocol.version`` is added when an attempt's event carries the
response's ``http_version``. Attributes are bounded: never a URL, a path or
a request id; the host is ``server.address`` (at most ``max_hosts`` distinct
values, then ``_OTHER``); methods outside the known set are ``_OTHER``;
reasons come from fixed sets.

Events are dispatched by their class name, so a new kind of event needs one
entry in :attr:`MetricsObserver.handlers` and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._otel_attrs import (
    ERROR_TYPE,
    METHOD,
    OTHER,
    PROTOCOL_VERSION,
    SERVER_ADDRESS,
    SERVER_PORT,
    STATUS_CODE,
    URL_SCHEME,
    Cap,
    method_of,
    protocol_version,
    retry_reason,
    scheme_of,
    server_of,
    split_host_key,
)
from ._otel_context import enclosing_http_client
from ._otel_instruments import Instruments
from .logging import RequestTracker

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from ..policies.breaker import BreakerTransition, CircuitBreaker

__all__ = ["INSTALL_HINT", "STATE_VALUES", "MetricsObserver"]

INSTALL_HINT = "pip install 'httpx-resilience[otel]'"

#: ``resilience.breaker.state``'s values, by ``CircuitState`` value (Prometheus's encoding).
STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2}
# Ours, namespaced like the instruments.
OUTCOME = "resilience.outcome"
RESEND = "resilience.attempt.resend"
REASON = "resilience.retry.reason"
BREAKER = "resilience.breaker.name"
STATE = "resilience.breaker.state"
SPEND = "resilience.budget.spend"
BACKEND = "resilience.backend"
SCRIPT = "resilience.backend.script"
OK = "resilience.backend.ok"
SERVICE = "httpx_resilience.service"  # the spans' name for AsyncHTTPClient(service=...)
_NOT_SENT = frozenset({"CircuitBreakerOpenError"})  # an attempt the breaker refused
_SPENDS = frozenset({"retry", "hedge"})
_OUTCOMES = frozenset({"success", "failure", "cancelled", "abandoned"})

Attrs = dict[str, Any]


def _opentelemetry() -> Any:
    try:
        from opentelemetry import context, metrics, trace
    except ImportError as exc:
        raise ImportError(f"OpenTelemetry metrics need opentelemetry-api: {INSTALL_HINT}") from exc
    return metrics, trace, context


class _Flight:
    """One logical request: its bounded attributes and the start of the attempt in flight."""

    __slots__ = ("attempt_t0", "attrs", "measured", "t0")

    def __init__(self, attrs: Attrs, now: float, measured: bool) -> None:
        self.attrs = attrs
        self.t0 = now
        self.attempt_t0: float | None = None  # None when no attempt is in flight
        # False when another HTTP CLIENT span encloses the request: its duration is the one
        self.measured = measured


def _failure(status: int | None, error_type: str | None, event: object = None) -> Attrs:
    """The outcome attributes of an attempt or request: status, ``error.type``, protocol."""
    attrs: Attrs = {}
    version = protocol_version(event)  # when the event carries the response's http_version
    if version is not None:
        attrs[PROTOCOL_VERSION] = version
    if status is not None:
        attrs[STATUS_CODE] = status
        if status >= 400 and error_type is None:
            error_type = str(status)  # the conventions: a 4xx/5xx is a client-side error
    if error_type is not None:
        attrs[ERROR_TYPE] = error_type
    return attrs


class MetricsObserver:
    """Record the pipeline's events as OpenTelemetry metrics.

    Use it as an observer (``ResilientTransport(observers=[obs])``,
    ``AsyncHTTPClient(observers=[obs])``), or let
    :class:`~httpx_resilience.TracingMiddleware` add one beside the spans.
    Call :meth:`watch_breaker` for each breaker whose transitions and state
    should be recorded. Meant for one event loop, like the breaker.

    Args:
        meter_provider: the provider; the global one (as set by
            ``metrics.set_meter_provider``, even later) when ``None``.
        http_duration: record ``http.client.request.duration``. Leave it on,
            unless ``opentelemetry-instrumentation-httpx`` records it for the
            same attempts (it does without a ``TracingObserver``, whose attempt
            spans suppress it): then one of the two must stop, or the attempts
            are counted twice.
        max_hosts: distinct ``server.address`` values kept; later ones are ``_OTHER``.
        max_open: logical requests tracked at once.

    Raises:
        ImportError: opentelemetry-api is not installed (the message says how to install it).
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        http_duration: bool = True,
        max_hosts: int = 200,
        max_open: int = 10_000,
    ) -> None:
        metrics, self._trace, self._context = _opentelemetry()
        from .. import __version__

        self.meter = metrics.get_meter("httpx_resilience", __version__, meter_provider)
        #: The instruments (see :class:`~._otel_instruments.Instruments` for their names).
        self.instruments = Instruments(self.meter, http_duration)
        self._hosts = Cap(max_hosts)
        self._breakers = Cap(max_hosts)
        self._error_types = Cap(64)
        self._services = Cap(max_hosts)
        self._backends = Cap(16)
        self._scripts = Cap(32)
        self._url_attrs: dict[tuple[str, str, str | None], Attrs] = {}
        self._tracker: RequestTracker[_Flight] = RequestTracker(self._abandoned, max_open)
        self._watched: dict[int, CircuitBreaker] = {}
        #: Event class name → handler; unknown kinds of events are ignored.
        self.handlers: dict[str, Callable[[Any], None]] = {
            "AttemptStarted": self._attempt_started,
            "AttemptFailed": self._attempt_failed,
            "RequestFinished": self._request_finished,
            "RetryScheduled": self._retry_scheduled,
            "LimiterWaited": self._limiter_waited,
            "HedgeFired": self._hedge_fired,
            "BulkheadRejected": self._bulkhead_rejected,
            "BreakerTransitioned": self._breaker_transitioned,
            "BudgetRefused": self._budget_refused,
            "FallbackServed": self._fallback_served,
            "ThrottleRejected": self._throttle_rejected,
            "BackendFallbackEntered": self._backend_event,
            "BackendFallbackLeft": self._backend_event,
            "BackendScriptRan": self._backend_event,
        }

    # -- attributes --------------------------------------------------------------------

    def _request_attrs(self, method: str, url: str, service: str | None = None) -> Attrs:
        """Method, server, scheme and service of a request, cached per (method, URL, service)."""
        key = (method, url, service)
        attrs = self._url_attrs.get(key)
        if attrs is None:
            attrs = {METHOD: method_of(method)}
            if service is not None:
                attrs[SERVICE] = self._services(service)
            host, port = server_of(url)
            attrs[SERVER_ADDRESS] = self._hosts(host) if host is not None else OTHER
            if port is not None and attrs[SERVER_ADDRESS] != OTHER:
                attrs[SERVER_PORT] = port
            scheme = scheme_of(url)
            if scheme is not None:
                attrs[URL_SCHEME] = scheme
            if len(self._url_attrs) >= 512:
                self._url_attrs.clear()
            self._url_attrs[key] = attrs
        return attrs

    def _host_attrs(self, host: str, request_id: str | None = None) -> Attrs:
        """Server attributes of a host key, or of the tracked request when there is one."""
        flight = self._tracker.get(request_id)
        if flight is not None:
            attrs = flight.attrs
            return {k: attrs[k] for k in (SERVER_ADDRESS, SERVER_PORT) if k in attrs}
        address, port = split_host_key(host)
        out: Attrs = {SERVER_ADDRESS: self._hosts(address)}
        if port is not None and out[SERVER_ADDRESS] != OTHER:
            out[SERVER_PORT] = port
        return out

    def _attrs_of(self, event: Any) -> Attrs:
        """Request attributes of an event: the tracked request's, else from its own fields."""
        flight = self._tracker.get(event.request_id)
        if flight is not None:
            return flight.attrs
        return self._request_attrs(event.method, event.url)

    # -- events ------------------------------------------------------------------------

    def __call__(self, event: Any) -> None:
        """Record ``event`` (any kind the pipeline emits; unknown kinds are ignored)."""
        handler = self.handlers.get(type(event).__name__)
        if handler is not None:
            handler(event)

    def _attempt_started(self, ev: Any) -> None:
        now = time.perf_counter()
        flight = self._tracker.get(ev.request_id)
        if flight is None:
            enclosed = enclosing_http_client(self._trace, self._context)
            attrs = self._request_attrs(ev.method, ev.url, ev.service)
            flight = _Flight(attrs, now, not enclosed)
            self._tracker.start(ev.request_id, flight)
        elif flight.attempt_t0 is not None:  # the previous attempt ended without a report
            self._record_attempt(flight, now - flight.attempt_t0, None, "abandoned")
        flight.attempt_t0 = now
        self.instruments.attempts.add(1, {**flight.attrs, RESEND: ev.attempt > 1})

    def _attempt_failed(self, ev: Any) -> None:
        flight = self._tracker.get(ev.request_id)
        if flight is None:  # started before this observer was attached
            flight = _Flight(self._request_attrs(ev.method, ev.url), 0.0, True)
        # Recorded here, not again at the request's end.
        self._record_attempt(flight, ev.duration, ev.status_code, ev.error_type, ev)

    def _record_attempt(
        self,
        flight: _Flight,
        duration: float,
        status: int | None,
        error_type: str | None,
        event: object = None,
    ) -> None:
        flight.attempt_t0 = None
        histogram = self.instruments.http_duration
        if histogram is not None and flight.measured and error_type not in _NOT_SENT:
            histogram.record(duration, {**flight.attrs, **_failure(status, error_type, event)})

    def _request_finished(self, ev: Any) -> None:
        flight = self._tracker.finish(ev.request_id)
        if flight is not None:
            attrs = flight.attrs
            if flight.attempt_t0 is not None:  # the last attempt: its outcome is the request's
                self._record_attempt(
                    flight, time.perf_counter() - flight.attempt_t0, ev.status_code,
                    ev.error_type, ev,
                )
        else:  # refused before any attempt, or started before this observer was attached
            attrs = self._request_attrs(ev.method, ev.url, ev.service)
        outcome = ev.outcome if ev.outcome in _OUTCOMES else OTHER
        error_type = ev.error_type
        if error_type is None and outcome != "success" and ev.status_code is not None:
            error_type = str(ev.status_code)
        self.instruments.request_duration.record(
            ev.elapsed, {**attrs, OUTCOME: outcome, **_failure(ev.status_code, error_type)}
        )

    def _abandoned(self, flight: _Flight, reason: str) -> None:
        now = time.perf_counter()
        if flight.attempt_t0 is not None:
            self._record_attempt(flight, now - flight.attempt_t0, None, reason)
        self.instruments.request_duration.record(
            now - flight.t0, {**flight.attrs, OUTCOME: reason, ERROR_TYPE: reason}
        )

    def abandon_current(self, reason: str = "abandoned") -> int:
        """Record the current task's unfinished requests as ``reason`` (used by middlewares)."""
        return self._tracker.abandon_current(reason)

    def _retry_scheduled(self, ev: Any) -> None:
        self.instruments.retries.add(1, {**self._attrs_of(ev), REASON: retry_reason(ev.reason)})

    def _limiter_waited(self, ev: Any) -> None:
        self.instruments.limiter_wait.record(ev.waited, self._host_attrs(ev.host, ev.request_id))

    def _hedge_fired(self, ev: Any) -> None:
        self.instruments.hedges.add(1, self._attrs_of(ev))

    def _bulkhead_rejected(self, ev: Any) -> None:
        self.instruments.bulkhead_rejections.add(1, self._host_attrs(ev.host))

    def _budget_refused(self, ev: Any) -> None:
        spend = ev.spend if ev.spend in _SPENDS else OTHER
        self.instruments.budget_refusals.add(1, {**self._attrs_of(ev), SPEND: spend})

    def _fallback_served(self, ev: Any) -> None:
        attrs = self._event_attrs(ev)
        error_type = getattr(ev, "error_type", None)  # the failure the fallback covered
        attrs[ERROR_TYPE] = self._error_types(str(error_type)) if error_type else OTHER
        self.instruments.fallbacks.add(1, attrs)

    def _throttle_rejected(self, ev: Any) -> None:
        attrs = self._event_attrs(ev)
        attrs[RESEND] = getattr(ev, "attempt", 1) > 1
        self.instruments.throttle_rejections.add(1, attrs)

    def _event_attrs(self, ev: Any) -> Attrs:
        """Request attributes of an event whose fields are not known in advance."""
        method, url = getattr(ev, "method", None), getattr(ev, "url", None)
        if isinstance(method, str) and isinstance(url, str):
            flight = self._tracker.get(getattr(ev, "request_id", None))
            return dict(flight.attrs if flight is not None else self._request_attrs(method, url))
        return dict(
            self._host_attrs(str(getattr(ev, "host", "")), getattr(ev, "request_id", None))
        )

    def _backend_event(self, ev: Any) -> None:
        """A shared-state backend's events (a backend takes the pipeline's observers as is)."""
        attrs: Attrs = {BACKEND: self._backends(str(ev.backend))}
        ins = self.instruments
        name = type(ev).__name__
        if name == "BackendFallbackEntered":
            ins.backend_fallbacks.add(1, attrs)
        elif name == "BackendFallbackLeft":
            ins.backend_fallback_duration.record(ev.down_for, attrs)
        else:
            attrs[SCRIPT] = self._scripts(str(ev.script))
            attrs[OK] = bool(ev.ok)
            ins.backend_script_duration.record(ev.latency, attrs)

    # -- breakers ----------------------------------------------------------------------

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Record ``breaker``'s transitions and state (its per-host children's too).

        Records the current state at once; idempotent.
        """
        if id(breaker) in self._watched:
            return
        self._watched[id(breaker)] = breaker
        breaker.add_listener(self._on_transition)
        if breaker.scope == "global":
            self._set_state(breaker.name, breaker.state.value)
        for name, child in breaker.children().items():
            self._set_state(name, child.state.value)

    def _on_transition(self, t: BreakerTransition) -> None:
        self._transition(t.name, t.new.value)

    def _breaker_transitioned(self, ev: Any) -> None:
        self._transition(ev.name, ev.new_state)

    def _transition(self, name: str, state: str) -> None:
        state = state if state in STATE_VALUES else OTHER
        self.instruments.transitions.add(1, {BREAKER: self._breakers(name), STATE: state})
        self._set_state(name, state)

    def _set_state(self, name: str, state: str) -> None:
        gauge = self.instruments.breaker_state
        if gauge is not None:
            gauge.set(STATE_VALUES.get(state, -1), {BREAKER: self._breakers(name)})

    def __repr__(self) -> str:
        return f"MetricsObserver(open={len(self._tracker)}, breakers={len(self._watched)})"
