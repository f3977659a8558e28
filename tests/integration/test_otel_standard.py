"""Standard telemetry over real sockets: one CLIENT span per attempt, and OpenTelemetry metrics.

Spans go to the SDK's in-memory exporter, metrics to its in-memory reader;
requests go to a ChaosServer, with retries. ``opentelemetry-instrumentation-httpx``
is enabled globally (it wraps httpx's own transport, the one each attempt is
sent through) or on one client (it wraps the client's transport: ours).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import context, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from httpx_resilience import (
    AsyncHTTPClient,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    ClientConfig,
    HedgingPolicy,
    TokenBucketRateLimiter,
)
from httpx_resilience.backends._events import (
    BackendFallbackEntered,
    BackendFallbackLeft,
    BackendScriptRan,
)
from httpx_resilience.middleware.tracing import TracingMiddleware
from httpx_resilience.observe.events import (
    AttemptStarted,
    BreakerTransitioned,
    BudgetRefused,
    LimiterWaited,
    RequestFinished,
)
from httpx_resilience.observe.otel import TracingObserver
from httpx_resilience.observe.otel_metrics import MetricsObserver
from httpx_resilience.pipeline import ResilientTransport
from httpx_resilience.testing import ChaosServer, Fault

FAST = ClientConfig(
    timeout=2.0, retry_backoff_factor=0.01, retry_max_delay=0.05, retry_jitter="none"
)
OURS = "httpx_resilience"
THEIRS = "opentelemetry.instrumentation.httpx"
SRC = Path(__file__).resolve().parents[2] / "src" / "httpx_resilience"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """An in-memory span exporter."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """An SDK tracer provider exporting synchronously to ``exporter``; shut down after the test."""
    tp = TracerProvider(shutdown_on_exit=False)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """An in-memory metric reader."""
    return InMemoryMetricReader()


@pytest.fixture
def meters(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    """An SDK meter provider read by ``reader``; shut down after the test."""
    mp = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield mp
    mp.shutdown()


@pytest.fixture
def instrumented(provider: TracerProvider, meters: MeterProvider) -> Iterator[None]:
    """``HTTPXClientInstrumentor().instrument()`` for one test: every httpx transport is wrapped."""
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider, meter_provider=meters)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def resilient(*observers: Any, **kw: Any) -> ResilientTransport:
    """Our pipeline over httpx's own transport (the one the instrumentation wraps)."""
    return ResilientTransport(httpx.AsyncHTTPTransport(), config=FAST, observers=observers, **kw)


def clients(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """The CLIENT spans, in start order."""
    found = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    return sorted(found, key=lambda s: s.start_time or 0)


def points(reader: InMemoryMetricReader, name: str, scope: str = OURS) -> list[Any]:
    """The data points of metric ``name`` of instrumentation scope ``scope``."""
    data = reader.get_metrics_data()
    found: list[Any] = []
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            if sm.scope.name == scope:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
    return found


def metric_names(reader: InMemoryMetricReader, scope: str) -> set[str]:
    """The names of the metrics with data points of instrumentation scope ``scope``."""
    data = reader.get_metrics_data()
    return {
        m.name
        for rm in (data.resource_metrics if data is not None else ())
        for sm in rm.scope_metrics
        if sm.scope.name == scope
        for m in sm.metrics
        if list(m.data.data_points)
    }


def total(found: list[Any], **attrs: Any) -> float:
    """The sum of the counter points (or histogram counts) whose attributes include ``attrs``."""
    wanted = {k.replace("__", "."): v for k, v in attrs.items()}
    return float(
        sum(
            p.value if hasattr(p, "value") else p.count
            for p in found
            if all((p.attributes or {}).get(k) == v for k, v in wanted.items())
        )
    )


def assert_one_client_span_per_attempt(
    spans: tuple[ReadableSpan, ...], server: ChaosServer, path: str, attempts: int
) -> list[ReadableSpan]:
    """Each request the server saw has exactly one CLIENT span of ours, named by its traceparent."""
    ours = [s for s in clients(spans) if s.instrumentation_scope and s.instrumentation_scope.name == OURS]
    sent = [r.headers["traceparent"].split("-")[2] for r in server.requests(path)]
    assert len(sent) == attempts
    assert [f"{s.context.span_id:016x}" for s in ours] == sent
    return ours


# -- one CLIENT span per attempt -----------------------------------------------------------


@pytest.mark.usefixtures("instrumented")
async def test_global_instrumentation_gives_one_client_span_per_attempt(
    chaos_server: ChaosServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    meters: MeterProvider,
    reader: InMemoryMetricReader,
) -> None:
    """503, 503, 200 under HTTPXClientInstrumentor().instrument(): three CLIENT spans, ours,
    under one INTERNAL request span, resends numbered; the instrumentation adds no span and
    no metric point of its own."""
    chaos_server.route("/r", statuses=[503, 503, 200])
    transport = resilient(TracingObserver(provider), MetricsObserver(meters))
    async with httpx.AsyncClient(transport=transport) as c:
        with provider.get_tracer("test").start_as_current_span("handler") as handler:
            response = await c.get(chaos_server.url_for("/r"))
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert not [s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == THEIRS]
    attempts = assert_one_client_span_per_attempt(spans, chaos_server, "/r", 3)
    assert len(clients(spans)) == 3
    [request] = [s for s in spans if s.kind is trace.SpanKind.INTERNAL and s.name == "GET"]
    assert request.parent is not None
    assert request.parent.span_id == handler.get_span_context().span_id
    for n, span in enumerate(attempts):
        assert span.parent is not None and span.parent.span_id == request.context.span_id
        assert (span.attributes or {}).get("http.request.resend_count") == (n or None)
    assert [(s.attributes or {})["http.response.status_code"] for s in attempts] == [503, 503, 200]
    durations = points(reader, "http.client.request.duration")
    assert total(durations) == 3  # one measurement per attempt
    assert total(durations, http__response__status_code=503, error__type="503") == 2
    assert total(durations, http__response__status_code=200) == 1
    assert all("http.request.resend_count" not in (p.attributes or {}) for p in durations)
    assert metric_names(reader, THEIRS) == set()


@pytest.mark.usefixtures("instrumented")
async def test_tracing_middleware_over_httpx_transport_gives_one_client_span_per_attempt(
    chaos_server: ChaosServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    meters: MeterProvider,
    reader: InMemoryMetricReader,
) -> None:
    """AsyncHTTPClient(transport="httpx") with TracingMiddleware under the global
    instrumentation: one CLIENT span and one duration measurement per attempt."""
    chaos_server.route("/mw1", statuses=[500, 503, 200])
    mw = TracingMiddleware(provider, meter_provider=meters)
    async with AsyncHTTPClient(
        chaos_server.url, config=FAST, transport="httpx", middlewares=[mw]
    ) as c:
        assert (await c.get("/mw1")).status_code == 200
    spans = exporter.get_finished_spans()
    assert len(assert_one_client_span_per_attempt(spans, chaos_server, "/mw1", 3)) == 3
    assert len(clients(spans)) == 3
    assert total(points(reader, "http.client.request.duration")) == 3
    assert metric_names(reader, THEIRS) == set()


@pytest.mark.usefixtures("instrumented")
async def test_without_suppression_each_attempt_has_two_client_spans(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The overlap the suppression removes: with it off, the instrumentation's span of each
    attempt is a second CLIENT span (now under ours, as our attempt span is current)."""
    chaos_server.route("/two", statuses=[503, 200])
    observer = TracingObserver(provider, suppress_instrumentation=False)
    async with httpx.AsyncClient(transport=resilient(observer)) as c:
        await c.get(chaos_server.url_for("/two"))
    spans = exporter.get_finished_spans()
    by_scope = [s.instrumentation_scope.name for s in clients(spans) if s.instrumentation_scope]
    assert sorted(by_scope) == [OURS, OURS, THEIRS, THEIRS]
    ours = {s.context.span_id for s in clients(spans) if s.instrumentation_scope.name == OURS}  # type: ignore[union-attr]
    assert all(
        s.parent is not None and s.parent.span_id in ours
        for s in clients(spans)
        if s.instrumentation_scope and s.instrumentation_scope.name == THEIRS
    )


@pytest.mark.parametrize("metrics_first", [True, False])
async def test_instrumenting_the_client_gives_the_request_one_client_span(
    chaos_server: ChaosServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    meters: MeterProvider,
    reader: InMemoryMetricReader,
    metrics_first: bool,
) -> None:
    """instrument_client() wraps the client's transport (ours): its span cannot see the attempts,
    so it is the request's one CLIENT span (the conventions' top-most operation); our attempt
    spans are INTERNAL below it, its traceparent is the one sent, and its duration the one
    recorded (whatever the order of the observers)."""
    chaos_server.route("/c", statuses=[502, 200])
    tracing, metrics = TracingObserver(provider), MetricsObserver(meters)
    observers = (metrics, tracing) if metrics_first else (tracing, metrics)
    async with httpx.AsyncClient(transport=resilient(*observers)) as c:
        HTTPXClientInstrumentor.instrument_client(c, tracer_provider=provider, meter_provider=meters)
        await c.get(chaos_server.url_for("/c"))
    spans = exporter.get_finished_spans()
    [wrapper] = clients(spans)
    assert wrapper.instrumentation_scope is not None
    assert wrapper.instrumentation_scope.name == THEIRS
    [request] = [s for s in spans if s.parent and s.parent.span_id == wrapper.context.span_id]
    attempts = [s for s in spans if s.parent and s.parent.span_id == request.context.span_id]
    assert [a.kind for a in attempts] == [trace.SpanKind.INTERNAL] * 2
    assert [(a.attributes or {}).get("http.request.resend_count") for a in attempts] == [None, 1]
    sent = {r.headers["traceparent"].split("-")[2] for r in chaos_server.requests("/c")}
    assert sent == {f"{wrapper.context.span_id:016x}"}
    assert points(reader, "http.client.request.duration") == []  # the wrapper's metric is its own
    assert total(points(reader, "resilience.attempts")) == 2


async def test_the_context_is_given_back_after_each_attempt(
    chaos_server: ChaosServer, provider: TracerProvider
) -> None:
    """Around a request, the caller's span stays current and HTTP instrumentation stays on;
    inside an attempt, the attempt's span is current and instrumentation is off."""
    chaos_server.route("/ctx", statuses=[500, 200])
    seen: list[tuple[bool, bool]] = []

    class Peek(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            span = trace.get_current_span()
            seen.append((span.get_span_context().span_id == int(request.headers["traceparent"].split("-")[2], 16), is_http_instrumentation_enabled()))
            return await inner.handle_async_request(request)

    inner = httpx.AsyncHTTPTransport()
    transport = ResilientTransport(Peek(), config=FAST, observers=[TracingObserver(provider)])
    async with httpx.AsyncClient(transport=transport) as c:
        with provider.get_tracer("t").start_as_current_span("caller") as caller:
            before = context.get_current()
            await c.get(chaos_server.url_for("/ctx"))
            assert context.get_current() is before
            assert trace.get_current_span() is caller
            assert is_http_instrumentation_enabled()
    await inner.aclose()
    assert seen == [(True, False), (True, False)]


# -- metrics -----------------------------------------------------------------------------


async def test_resilience_meters_over_a_retried_request(
    chaos_server: ChaosServer, meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """Attempts, retries by reason and the logical duration, with bounded attributes."""
    chaos_server.route("/m", steps=[Fault(status=503), Fault(reset="before_headers"), Fault()])
    async with httpx.AsyncClient(transport=resilient(MetricsObserver(meters))) as c:
        assert (await c.get(chaos_server.url_for("/m"), params={"token": "t-1"})).status_code == 200
    server = {"server__address": "127.0.0.1", "server__port": chaos_server.port}
    attempts = points(reader, "resilience.attempts")
    assert total(attempts, **server, http__request__method="GET") == 3
    assert total(attempts, resilience__attempt__resend=False) == 1
    assert total(attempts, resilience__attempt__resend=True) == 2
    retries = points(reader, "resilience.retries")
    reasons = {(p.attributes or {})["resilience.retry.reason"]: p.value for p in retries}
    assert reasons.keys() == {"503", "network_error"} or reasons.keys() == {"503", "protocol_error"}
    assert sum(reasons.values()) == 2
    [logical] = points(reader, "resilience.request.duration")
    assert logical.count == 1
    assert (logical.attributes or {})["resilience.outcome"] == "success"
    durations = points(reader, "http.client.request.duration")
    assert total(durations) == 3
    assert tuple(durations[0].explicit_bounds[:3]) == (0.005, 0.01, 0.025)
    for p in attempts + retries + durations + [logical]:
        attrs = p.attributes or {}
        assert "url.full" not in attrs and not any("t-1" in str(v) for v in attrs.values())
        assert attrs["url.scheme"] == "http"


async def test_breaker_limiter_hedge_and_bulkhead_meters(
    chaos_server: ChaosServer, meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """Breaker transitions and state, limiter waits, hedges and bulkhead refusals are recorded."""
    chaos_server.route("/ok")
    chaos_server.route("/err", status=500)
    chaos_server.route("/hedge", steps=[Fault(latency=0.4), Fault()])
    chaos_server.route("/slow", latency=0.3)
    obs = MetricsObserver(meters)
    breaker = CircuitBreaker(1, 30, name="b")
    obs.watch_breaker(breaker)
    obs.watch_breaker(breaker)
    no_retry = ClientConfig(timeout=2.0, retry_attempts=0)
    t = ResilientTransport(config=no_retry, observers=[obs], circuit_breaker=breaker)
    async with httpx.AsyncClient(transport=t) as c:
        await c.get(chaos_server.url_for("/err"))
    t = resilient(obs, rate_limiter=TokenBucketRateLimiter(20, 1))
    async with httpx.AsyncClient(transport=t) as c:
        await c.get(chaos_server.url_for("/ok"))
        await c.get(chaos_server.url_for("/ok"))
    async with httpx.AsyncClient(transport=resilient(obs, hedging=HedgingPolicy(0.05))) as c:
        await c.get(chaos_server.url_for("/hedge"))
    async with httpx.AsyncClient(transport=resilient(obs, bulkhead=Bulkhead(1))) as c:
        slow = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.sleep(0.1)
        with pytest.raises(BulkheadFullError):
            await c.get(chaos_server.url_for("/slow"))
        await slow
    changes = points(reader, "resilience.breaker.transitions")
    assert total(changes, resilience__breaker__name="b", resilience__breaker__state="open") == 1
    [state] = points(reader, "resilience.breaker.state")
    assert state.value == 1 and (state.attributes or {})["resilience.breaker.name"] == "b"
    [wait] = points(reader, "resilience.rate_limiter.wait.duration")
    assert wait.count == 1 and wait.sum > 0
    assert (wait.attributes or {}) == {"server.address": "127.0.0.1", "server.port": chaos_server.port}
    assert total(points(reader, "resilience.hedges"), http__request__method="GET") == 1
    assert total(points(reader, "resilience.bulkhead.rejections"), server__port=chaos_server.port) == 1
    failed = points(reader, "resilience.request.duration")
    assert total(failed, resilience__outcome="failure", error__type="BulkheadFullError") == 1


@dataclass(frozen=True)
class FallbackServed:
    """The fallback helper's event, as the observer expects it (matched by class name)."""

    request_id: str | None
    method: str
    url: str
    host: str
    error_type: str
    error: str
    status_code: int


@dataclass(frozen=True)
class ThrottleRejected:
    """The adaptive throttle's event, as the observer expects it (matched by class name)."""

    host: str
    probability: float
    requests: int
    accepts: int
    attempt: int
    request_id: str | None = None


async def test_budget_fallback_and_throttle_events_and_bounded_attributes(
    meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """Events map by class name; methods, hosts and states stay within fixed sets."""
    obs = MetricsObserver(meters, max_hosts=1)
    url = "https://api.example/v1/users/42?api_key=[REDACTED]"
    obs(BudgetRefused("rid-1", "GET", url, "api.example", "retry"))
    obs(BudgetRefused("rid-2", "GET", url, "api.example", "something-else"))
    obs(FallbackServed("rid-3", "PURGE", url, "api.example", "CircuitBreakerOpenError", "", 200))
    obs(ThrottleRejected("other.example:8443", 0.5, 10, 2, 2))
    obs(RequestFinished("rid-4", "GET", "https://other.example/x", "other.example", 1, 0.1, "weird"))
    obs("not an event")
    refusals = points(reader, "resilience.retry_budget.refusals")
    assert total(refusals, resilience__budget__spend="retry", server__port=443) == 1
    assert total(refusals, resilience__budget__spend="_OTHER") == 1
    [fallback] = points(reader, "resilience.fallbacks")
    assert (fallback.attributes or {})["http.request.method"] == "_OTHER"
    assert (fallback.attributes or {})["error.type"] == "CircuitBreakerOpenError"
    [throttle] = points(reader, "resilience.throttle.rejections")
    assert (throttle.attributes or {}) == {"server.address": "_OTHER", "resilience.attempt.resend": True}
    [finished] = points(reader, "resilience.request.duration")
    assert (finished.attributes or {})["resilience.outcome"] == "_OTHER"
    assert (finished.attributes or {})["server.address"] == "_OTHER"
    assert repr(obs) == "MetricsObserver(open=0, breakers=0)"


async def test_later_kinds_of_events_become_span_events(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A budget refusal marks its request's span; a fallback served after the request ended
    marks the caller's span; unknown events are ignored."""
    obs = TracingObserver(provider)
    url = "http://api.example/x"
    with provider.get_tracer("t").start_as_current_span("caller"):
        obs(AttemptStarted("r", "GET", url, "api.example", 1, 3, httpx.Headers()))
        obs(BudgetRefused("r", "GET", url, "api.example", "retry"))
        obs(RequestFinished("r", "GET", url, "api.example", 1, 0.1, "failure", 503))
        obs(FallbackServed("r", "GET", url, "api.example", "HTTPResponseError", "", 200))
        obs("not an event")  # type: ignore[arg-type]
    spans = {(s.name, s.kind): s for s in exporter.get_finished_spans()}
    request = spans["GET", trace.SpanKind.INTERNAL]
    [refused] = [e for e in request.events if e.name == "retry_budget_refused"]
    assert (refused.attributes or {}) == {"httpx_resilience.spend": "retry"}
    [served] = spans["caller", trace.SpanKind.INTERNAL].events
    assert served.name == "fallback_served"
    assert (served.attributes or {})["httpx_resilience.error_type"] == "HTTPResponseError"
    assert (served.attributes or {})["httpx_resilience.status_code"] == 200


async def test_requests_that_never_report_an_end_are_measured_as_abandoned(
    chaos_server: ChaosServer, meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """Past max_open requests in flight, the oldest is ended as abandoned, attempt included;
    an attempt followed by another with no report between is ended as abandoned too."""
    chaos_server.route("/slow", latency=0.3)
    obs = MetricsObserver(meters, max_open=1)
    async with httpx.AsyncClient(transport=resilient(obs)) as c:
        first = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, c.get(chaos_server.url_for("/slow")))
    outcomes = points(reader, "resilience.request.duration")
    assert total(outcomes, resilience__outcome="abandoned", error__type="abandoned") == 1
    assert total(points(reader, "http.client.request.duration"), error__type="abandoned") == 1
    url = "http://api.example/x"
    obs(AttemptStarted("r", "GET", url, "api.example", 1, 3, httpx.Headers()))
    obs(AttemptStarted("r", "GET", url, "api.example", 2, 3, httpx.Headers()))
    obs(RequestFinished("r", "GET", url, "api.example", 2, 0.1, "success", 200))
    durations = points(reader, "http.client.request.duration")
    assert total(durations, server__address="api.example", error__type="abandoned") == 1
    assert total(durations, server__address="api.example", http__response__status_code=200) == 1


async def test_breaker_events_children_and_host_keys_without_a_port(
    meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """A BreakerTransitioned event and a per-host breaker's children are recorded; a host key
    without a port gives server.address alone."""
    obs = MetricsObserver(meters)
    obs(BreakerTransitioned("svc", "closed", "open", "5 failures"))
    breaker = CircuitBreaker(1, 30, name="per-host", scope="host")
    breaker.for_key("a.example").record_failure()
    obs.watch_breaker(breaker)
    obs(LimiterWaited("api.example", 0.25))
    states = {(p.attributes or {})["resilience.breaker.name"]: p.value for p in points(reader, "resilience.breaker.state")}
    assert states["svc"] == 1 and 1 in [v for k, v in states.items() if k != "svc"]
    [wait] = points(reader, "resilience.rate_limiter.wait.duration")
    assert (wait.attributes or {}) == {"server.address": "api.example"}


async def test_backend_events_are_measured(
    meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """A shared-state backend's fallbacks and script round trips (it takes our observers as is)."""
    obs = MetricsObserver(meters)
    backend = "redis://127.0.0.1:6379/0"
    obs(BackendScriptRan(backend, "token_bucket", 0.002, True))
    obs(BackendScriptRan(backend, "token_bucket", 0.5, False))
    obs(BackendFallbackEntered(backend, "ConnectionError", 1.0))
    obs(BackendFallbackLeft(backend, 3.5))
    scripts = points(reader, "resilience.backend.script.duration")
    assert total(scripts, resilience__backend__script="token_bucket", resilience__backend__ok=True) == 1
    assert total(scripts, resilience__backend__ok=False) == 1
    assert total(points(reader, "resilience.backend.fallbacks"), resilience__backend=backend) == 1
    [down] = points(reader, "resilience.backend.fallback.duration")
    assert down.sum == 3.5


def test_missing_api_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-api, MetricsObserver says what to pip install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[otel\]'"):
        MetricsObserver()


@dataclass(frozen=True)
class AttemptFailed:
    """An attempt's failure that also names the response's protocol (``http_version``)."""

    request_id: str | None
    method: str
    url: str
    host: str
    attempt: int
    max_attempts: int
    duration: float
    status_code: int | None = None
    error_type: str | None = None
    error: str | None = None
    http_version: str | None = None


async def test_the_protocol_version_is_recorded_when_an_event_carries_it(
    meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """network.protocol.version comes from an event's http_version, within a fixed set."""
    obs = MetricsObserver(meters)
    url = "http://api.example:8080/x"
    obs(AttemptFailed("r", "GET", url, "api.example:8080", 1, 3, 0.1, 503, None, None, "HTTP/1.1"))
    obs(AttemptFailed("r", "GET", url, "api.example:8080", 2, 3, 0.1, 503, None, None, "HTTP/9"))
    found = points(reader, "http.client.request.duration")
    assert total(found, network__protocol__version="1.1", server__port=8080) == 1
    assert total(found) == 2
    quiet = MetricsObserver(meters, http_duration=False)
    assert quiet.instruments.http_duration is None
    quiet(AttemptFailed("r", "GET", url, "api.example:8080", 1, 3, 0.1, 503))
    assert total(points(reader, "http.client.request.duration")) == 2


async def test_tracing_middleware_records_spans_and_metrics(
    chaos_server: ChaosServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    meters: MeterProvider,
    reader: InMemoryMetricReader,
) -> None:
    """TracingMiddleware attaches a tracing and a metrics observer once per client."""
    chaos_server.route("/mw", statuses=[503, 200])
    mw = TracingMiddleware(provider, meter_provider=meters)
    breaker = CircuitBreaker(5, 30, name="svc")
    async with AsyncHTTPClient(
        chaos_server.url, config=FAST, middlewares=[mw], service="svc", circuit_breaker=breaker
    ) as c:
        await c.get("/mw")
        await c.get("/mw")
        observers = c.transport.observers
    assert observers.count(mw.observer) == observers.count(mw.metrics_observer) == 1
    assert len(clients(exporter.get_finished_spans())) == 3
    durations = points(reader, "http.client.request.duration")
    assert total(durations, httpx_resilience__service="svc") == total(durations) == 3
    [state] = points(reader, "resilience.breaker.state")
    assert state.value == 0
    spans_only = TracingMiddleware(provider, metrics=False)
    assert spans_only.metrics_observer is None


async def test_a_cancelled_request_is_measured_as_cancelled(
    chaos_server: ChaosServer, provider: TracerProvider, meters: MeterProvider, reader: InMemoryMetricReader
) -> None:
    """A request cancelled in flight ends its attempt and its request as cancelled."""
    chaos_server.route("/hang", latency=5)
    mw = TracingMiddleware(provider, meter_provider=meters)
    async with AsyncHTTPClient(chaos_server.url, config=FAST, middlewares=[mw]) as c:
        task = asyncio.create_task(c.get("/hang"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [attempt] = points(reader, "http.client.request.duration")
    assert (attempt.attributes or {})["error.type"] == "CancelledError"
    [logical] = points(reader, "resilience.request.duration")
    assert (logical.attributes or {})["resilience.outcome"] == "cancelled"
    assert repr(mw.metrics_observer) == "MetricsObserver(open=0, breakers=0)"


# -- packaging -----------------------------------------------------------------------------


def test_no_module_imports_the_sdk_and_opentelemetry_loads_lazily() -> None:
    """The otel extra is the API only; importing our OpenTelemetry modules loads none of it."""
    users = [p.name for p in SRC.rglob("*.py") if "opentelemetry.sdk" in p.read_text()]
    assert users == []
    code = (
        "import sys, httpx_resilience\n"
        "import httpx_resilience.observe.otel, httpx_resilience.observe.otel_metrics\n"
        "import httpx_resilience.middleware.tracing\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
