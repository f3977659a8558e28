"""``TracingObserver``: OpenTelemetry spans for each logical request and each attempt.

Needs the OpenTelemetry API: ``pip install 'httpx-resilience[otel]'``.

As the HTTP semantic conventions ask, each attempt (each physical request) is
one CLIENT span, under an INTERNAL span for the logical request (a child of
the caller's current span). Attempt spans carry ``http.request.method``,
``server.address``, ``server.port``, ``url.full`` (redacted), ``url.scheme``,
``http.response.status_code``, ``http.request.resend_count`` on a resend and
``error.type`` on a failure; each attempt's ``traceparent`` names its span.
While an attempt is sent its span is current and HTTP instrumentation is
suppressed, so ``opentelemetry-instrumentation-httpx`` adds no second CLIENT
span (see :mod:`._otel_context`). Retries, limiter waits, hedges, budget and
throttle refusals, fallbacks and breaker transitions become span events; a
bulkhead rejection is a short INTERNAL span with ``error.type``.

Spans are ended on every path; a request that never reports an end
(cancelled, refused without a report) is ended with ``error.type``
``cancelled``/``abandoned`` when its task ends or starts another request, and
at most ``max_open`` requests are kept open.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..config import HTTP_METHODS
from ._otel_attrs import (
    ERROR_TYPE,
    METHOD,
    METHOD_ORIGINAL,
    RESEND_COUNT,
    SERVER_ADDRESS,
    SERVER_PORT,
    STATUS_CODE,
    URL_FULL,
    URL_SCHEME,
    scheme_of,
    server_of,
    span_event,
)
from ._otel_context import AttemptScope
from .events import (
    AttemptFailed,
    AttemptStarted,
    BreakerTransitioned,
    BulkheadRejected,
    Event,
    HedgeFired,
    LimiterWaited,
    RequestFinished,
    RetryScheduled,
)
from .logging import RequestTracker
from .redact import current_rules
from .redactor import DEFAULT_REDACTOR, Redactor

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, TracerProvider

    from ..policies.breaker import BreakerTransition, CircuitBreaker

__all__ = ["INSTALL_HINT", "TracingObserver"]

INSTALL_HINT = "pip install 'httpx-resilience[otel]'"

# Ours, namespaced.
SERVICE = "httpx_resilience.service"
REQUEST_ID = "httpx_resilience.request_id"
ATTEMPTS = "httpx_resilience.attempts"


def _opentelemetry() -> Any:
    try:
        from opentelemetry import context, propagate, trace
    except ImportError as exc:
        raise ImportError(f"OpenTelemetry tracing needs opentelemetry-api: {INSTALL_HINT}") from exc
    return trace, propagate, context


class _Request:
    """The open spans of one logical request."""

    __slots__ = ("attempt", "client", "named", "scope", "span", "traced")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.attempt: Span | None = None
        self.scope: tuple[Any, Any] | None = None  # the attempt's context, while it is current
        self.client = True  # attempts are CLIENT spans (no other HTTP CLIENT span encloses)
        self.named = False  # the request span got its method/URL attributes
        # False under the API's no-op provider: nothing to record or propagate.
        self.traced = span.get_span_context().is_valid


_server = server_of  # the name the tests know


class TracingObserver:
    """Trace each logical request and its attempts with OpenTelemetry.

    Use it as an observer (``ResilientTransport(observers=[obs])``); call
    :meth:`watch_breaker` to see a breaker's transitions as span events of the
    request that caused them.

    Args:
        tracer_provider: the provider; the global one (as set by
            ``trace.set_tracer_provider``, even later) when ``None``.
        redactor: what to hide in ``url.full`` and event texts.
        propagator: injects the context into requests; the global one
            (``traceparent`` by default) when ``None``.
        inject: set ``False`` to send no trace headers.
        max_open: logical requests kept open at once; the oldest beyond it is ended.
        suppress_instrumentation: while an attempt is sent, suppress HTTP client
            instrumentation (``opentelemetry-instrumentation-httpx``), whose span
            would be a second CLIENT span for the attempt; ``False`` lets it run.

    Raises:
        ImportError: opentelemetry-api is not installed (the message says how to install it).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        redactor: Redactor | None = None,
        propagator: TextMapPropagator | None = None,
        inject: bool = True,
        max_open: int = 10_000,
        suppress_instrumentation: bool = True,
    ) -> None:
        trace, propagate, context = _opentelemetry()
        from .. import __version__

        self._trace = trace
        self._kind = trace.SpanKind.CLIENT
        self._internal = trace.SpanKind.INTERNAL
        self._scope = AttemptScope(trace, context, suppress_instrumentation)
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR
        self.tracer = trace.get_tracer(
            "httpx_resilience", __version__, tracer_provider=tracer_provider
        )
        self.redactor = redactor or DEFAULT_REDACTOR
        self._propagator = propagator
        self._propagate = propagate
        self.inject = inject
        self._tracker: RequestTracker[_Request] = RequestTracker(self._abandoned, max_open)
        self._watched: dict[int, CircuitBreaker] = {}
        self._attr_cache: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self._attr_rules = current_rules()

    # -- events ------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Open, annotate or end spans for ``event``."""
        if type(event) is AttemptStarted:
            self._attempt_started(event)
        elif type(event) is AttemptFailed:
            req = self._tracker.get(event.request_id)
            if req is not None and req.attempt is not None:
                self._end_attempt(req, event.status_code, event.error_type, event.error)
        elif type(event) is RequestFinished:
            self._finished(event)
        elif type(event) is RetryScheduled:
            req = self._tracker.get(event.request_id)
            if req is not None:
                attrs: dict[str, Any] = {
                    "httpx_resilience.attempt": event.attempt,
                    "httpx_resilience.delay": event.delay,
                    "httpx_resilience.reason": self.redactor.text(event.reason),
                }
                if event.retry_after is not None:
                    attrs["httpx_resilience.retry_after"] = event.retry_after
                req.span.add_event("retry_scheduled", attrs)
        elif type(event) is LimiterWaited:
            req = self._tracker.get(event.request_id)
            if req is None:  # the first attempt's wait comes before it starts
                start = time.time_ns() - int(event.waited * 1e9)
                req = self._open(event.request_id, None, start)
            req.span.add_event(
                "rate_limiter_wait",
                {"httpx_resilience.waited": event.waited, "httpx_resilience.host": event.host},
            )
        elif type(event) is HedgeFired:
            req = self._tracker.get(event.request_id)
            if req is not None:
                req.span.add_event(
                    "hedge_fired",
                    {
                        "httpx_resilience.hedge_number": event.hedge_number,
                        "httpx_resilience.delay": event.delay,
                    },
                )
        elif type(event) is BulkheadRejected:
            self._bulkhead_rejected(event)
        elif type(event) is BreakerTransitioned:
            self._breaker_event(event.name, event.old_state, event.new_state, event.reason)
        elif (extra := span_event(event)) is not None:
            # A later kind of event: on its request's span, else on the caller's current span.
            req = self._tracker.get(getattr(event, "request_id", None))
            span = req.span if req is not None else self._trace.get_current_span()
            if span.is_recording():
                span.add_event(*extra)

    def _open(
        self,
        request_id: str | None,
        headers: Any,
        start_time: int | None = None,
        name: str = "HTTP",
    ) -> _Request:
        """Open the logical request's span, a child of the caller's current span."""
        trace = self._trace
        context = None
        if (
            headers is not None
            and "traceparent" in headers
            and not trace.get_current_span().get_span_context().is_valid
        ):
            # No span is active, but the caller forwarded a trace context: continue it.
            context = (self._propagator or self._propagate).extract(headers)
        span = self.tracer.start_span(
            name, context=context, kind=self._internal, start_time=start_time
        )
        if request_id is not None and span.is_recording():
            span.set_attribute(REQUEST_ID, request_id)
        req = _Request(span)
        req.client = not self._scope.enclosed()
        self._tracker.start(request_id, req)
        return req

    def _attempt_started(self, ev: AttemptStarted) -> None:
        name = ev.method if ev.method in HTTP_METHODS else "HTTP"
        req = self._tracker.get(ev.request_id)
        if req is None:
            req = self._open(ev.request_id, ev.headers, name=name)
        if not req.traced:
            return
        if req.attempt is not None:  # the previous attempt ended without a report
            self._end_attempt(req, None, "abandoned", None)
        recording = req.span.is_recording()
        attrs = self._attributes(ev) if recording else None
        if not req.named and attrs is not None:
            req.named = True
            req.span.update_name(name)
            req.span.set_attributes(attrs)
        if ev.attempt > 1 and attrs is not None:
            attrs = {**attrs, RESEND_COUNT: ev.attempt - 1}
        trace = self._trace
        span = self.tracer.start_span(
            name, context=trace.set_span_in_context(req.span),
            kind=self._kind if req.client else self._internal, attributes=attrs,
        )
        req.attempt = span
        req.scope = self._scope.enter(span, not req.client)
        if self.inject and req.client and ev.headers is not None:
            context = req.scope[0]
            if self._propagator is not None:
                self._propagator.inject(ev.headers, context=context)
            else:
                self._propagate.inject(ev.headers, context=context)

    def _attributes(self, ev: AttemptStarted) -> dict[str, Any]:
        """The attempt's attributes, cached per (URL, method, service): a client repeats them."""
        key = (ev.url, ev.method, ev.service)
        rules = current_rules()
        if rules is not self._attr_rules:  # a secret parameter was added: url.full changes
            self._attr_cache.clear()
            self._attr_rules = rules
        attrs = self._attr_cache.get(key)
        if attrs is not None:
            return attrs
        url = self.redactor.url(ev.url)
        attrs = {URL_FULL: url}
        scheme = scheme_of(url)
        if scheme is not None:
            attrs[URL_SCHEME] = scheme
        if ev.method in HTTP_METHODS:
            attrs[METHOD] = ev.method
        else:
            attrs[METHOD] = "_OTHER"
            attrs[METHOD_ORIGINAL] = ev.method
        host, port = server_of(url)
        if host is not None:
            attrs[SERVER_ADDRESS] = host
        if port is not None:
            attrs[SERVER_PORT] = port
        if ev.service is not None:
            attrs[SERVICE] = ev.service
        if len(self._attr_cache) >= 512:
            self._attr_cache.clear()
        self._attr_cache[key] = attrs
        return attrs

    def _finished(self, ev: RequestFinished) -> None:
        req = self._tracker.finish(ev.request_id)
        if req is None:
            return
        if req.attempt is not None:  # the last attempt: its outcome is the request's
            self._end_attempt(req, ev.status_code, ev.error_type, None)
        span = req.span
        span.set_attribute(ATTEMPTS, ev.attempts)
        error_type = ev.error_type
        if error_type is None and ev.outcome != "success" and ev.status_code is not None:
            error_type = str(ev.status_code)
        self._end(span, ev.status_code, error_type, None)

    def _end_attempt(
        self, req: _Request, status: int | None, error_type: str | None, error: str | None
    ) -> None:
        """End the attempt's span and give the context back as it was before the attempt."""
        if req.scope is not None:
            self._scope.exit(req.scope)
            req.scope = None
        span, req.attempt = req.attempt, None
        if span is not None:
            self._end(span, status, error_type, error)

    def _end(
        self, span: Span, status: int | None, error_type: str | None, error: str | None
    ) -> None:
        if status is not None:
            span.set_attribute(STATUS_CODE, status)
            if status >= 400 and error_type is None:
                error_type = str(status)  # semconv: a 4xx/5xx is an error of a client span
        if error_type is not None:
            span.set_attribute(ERROR_TYPE, error_type)
            text = self.redactor.text(error) if error else error_type
            span.set_status(self._status(self._error, text))
        span.end()

    def _abandoned(self, req: _Request, reason: str) -> None:
        self._end_attempt(req, None, reason, None)
        self._end(req.span, None, reason, None)

    def abandon_current(self, reason: str = "abandoned") -> int:
        """End the current task's unfinished request spans as ``reason`` (used by middlewares)."""
        return self._tracker.abandon_current(reason)

    def _bulkhead_rejected(self, ev: BulkheadRejected) -> None:
        host, _, port = ev.host.rpartition(":") if ev.host.count(":") == 1 else (ev.host, "", "")
        attrs: dict[str, Any] = {SERVER_ADDRESS: host or ev.host}
        if port.isdigit():
            attrs[SERVER_PORT] = int(port)
        if ev.request_id is not None:
            attrs[REQUEST_ID] = ev.request_id
        span = self.tracer.start_span("HTTP", kind=self._internal, attributes=attrs)
        span.add_event(
            "bulkhead_rejected",
            {
                "httpx_resilience.max_concurrent": ev.max_concurrent,
                "httpx_resilience.max_queue": ev.max_queue,
            },
        )
        self._end(span, None, "BulkheadFullError", None)

    # -- breakers ----------------------------------------------------------------------

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Show ``breaker``'s transitions (its per-host children's too) as span events.

        Idempotent.
        """
        if id(breaker) not in self._watched:
            self._watched[id(breaker)] = breaker
            breaker.add_listener(self._on_transition)

    def _on_transition(self, t: BreakerTransition) -> None:
        self._breaker_event(t.name, t.old.value, t.new.value, t.reason)

    def _breaker_event(self, name: str, old: str, new: str, reason: str) -> None:
        """On the attempt (or request) that caused it, else on the caller's current span."""
        req = self._tracker.current()
        if req is not None:
            span = req.attempt or req.span
        else:
            span = self._trace.get_current_span()
            if not span.is_recording():
                return
        span.add_event(
            "circuit_breaker_transition",
            {
                "httpx_resilience.breaker": name,
                "httpx_resilience.old_state": old,
                "httpx_resilience.new_state": new,
                "httpx_resilience.reason": reason,
            },
        )

    def __repr__(self) -> str:
        return f"TracingObserver(open={len(self._tracker)}, inject={self.inject})"
