"""Observability over real sockets: logs, Prometheus metrics, OpenTelemetry spans, no secrets."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import prometheus_client
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from prometheus_client import CollectorRegistry, generate_latest

from httpx_resilience import (
    AsyncHTTPClient,
    BearerAuth,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    ClientConfig,
    HedgingPolicy,
    HTTPClientError,
    LoggingMiddleware,
    RateLimiterTimeout,
    TokenBucketRateLimiter,
)
from httpx_resilience.middleware.metrics import MetricsMiddleware
from httpx_resilience.middleware.tracing import TracingMiddleware
from httpx_resilience.observe.logging import LoggingObserver
from httpx_resilience.observe.otel import TracingObserver
from httpx_resilience.observe.prometheus import PrometheusObserver
from httpx_resilience.observe.redactor import Redactor
from httpx_resilience.pipeline import ResilientTransport
from httpx_resilience.testing import ChaosServer, FakeClock, Fault
from httpx_resilience.transports import make_transport

FAST = ClientConfig(
    timeout=2.0, retry_backoff_factor=0.01, retry_max_delay=0.05, retry_jitter="none"
)
NO_RETRY = ClientConfig(timeout=2.0, retry_attempts=0)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry."""
    return CollectorRegistry()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """An in-memory span exporter."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """An SDK tracer provider exporting synchronously to ``exporter``."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
def global_provider(
    provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TracerProvider]:
    """``provider`` installed as the global tracer provider for one test, then removed."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    trace.set_tracer_provider(provider)
    yield provider


def transport(*observers: Any, config: ClientConfig = FAST, **kw: Any) -> ResilientTransport:
    return ResilientTransport(config=config, observers=observers, **kw)


def value(reg: CollectorRegistry, name: str, **labels: str) -> float | None:
    return reg.get_sample_value(name, labels)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def by_name(spans: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """(the logical request span, its attempt spans in order)."""
    roots = [s for s in spans if "httpx_resilience.attempts" in (s.attributes or {})]
    assert len(roots) == 1, spans
    root = roots[0]
    attempts = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    return root, sorted(attempts, key=lambda s: s.start_time or 0)


# -- logging --------------------------------------------------------------------------


async def test_logging_success_is_debug_with_fields(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A successful request logs one DEBUG record carrying method, URL, status, attempts and ids."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    chaos_server.route("/ok")
    async with httpx.AsyncClient(transport=transport(LoggingObserver())) as c:
        r = await c.get(chaos_server.url_for("/ok"), headers={"X-Request-Id": "rid-1"})
    assert r.status_code == 200
    [rec] = [r for r in caplog.records if r.name == "httpx_resilience.requests"]
    assert rec.levelno == logging.DEBUG
    assert (rec.method, rec.status_code, rec.attempts, rec.outcome) == ("GET", 200, 1, "success")
    assert rec.request_id == "rid-1" and rec.url == chaos_server.url_for("/ok")
    assert rec.elapsed >= 0 and rec.service == rec.host


async def test_logging_failure_is_error_and_retries_warn(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Retries log WARNING (pipeline) and the final failure ERROR (observer), attempts at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    chaos_server.route("/down", status=503)
    async with httpx.AsyncClient(transport=transport(LoggingObserver())) as c:
        r = await c.get(chaos_server.url_for("/down"))
    assert r.status_code == 503
    retries = [r for r in caplog.records if r.name == "httpx_resilience.retry"]
    assert [r.levelno for r in retries].count(logging.WARNING) == 3
    mine = [r for r in caplog.records if r.name == "httpx_resilience.requests"]
    assert [r.levelno for r in mine] == [logging.DEBUG] * 4 + [logging.ERROR]
    final = mine[-1]
    assert (final.outcome, final.status_code, final.attempts) == ("failure", 503, 4)
    assert "HTTP 503" in final.getMessage()


async def test_logging_connection_error_names_the_error_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request that never got a response logs ERROR with error_type and no status."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience.requests")
    async with httpx.AsyncClient(transport=transport(LoggingObserver())) as c:
        with pytest.raises(httpx.TransportError):
            await c.get(f"http://127.0.0.1:{closed_port()}/x")
    final = caplog.records[-1]
    assert final.levelno == logging.ERROR and final.status_code is None
    assert final.error_type and final.error_type in final.getMessage()


async def test_logging_levels_are_configurable_and_quiet_when_off(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """success_level is honoured, and nothing is logged when the logger is above it."""
    logger = logging.getLogger("test.observe.levels")
    caplog.set_level(logging.INFO, logger="test.observe.levels")
    chaos_server.route("/ok")
    obs = LoggingObserver(logger, success_level=logging.INFO)
    async with httpx.AsyncClient(transport=transport(obs)) as c:
        await c.get(chaos_server.url_for("/ok"))
        logger.setLevel(logging.WARNING)
        await c.get(chaos_server.url_for("/ok"))
    assert [r.levelno for r in caplog.records if r.name == logger.name] == [logging.INFO]
    assert repr(obs) == "LoggingObserver(logger='test.observe.levels')"


async def test_logging_limiter_wait_and_bulkhead_rejection(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A limiter wait logs DEBUG with the seconds waited; a bulkhead rejection logs WARNING."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience.requests")
    chaos_server.route("/slow", latency=0.3)
    chaos_server.route("/ok")
    limiter = TokenBucketRateLimiter(20, 1)
    async with httpx.AsyncClient(
        transport=transport(LoggingObserver(), rate_limiter=limiter, bulkhead=Bulkhead(1))
    ) as c:
        await c.get(chaos_server.url_for("/ok"))
        await c.get(chaos_server.url_for("/ok"))  # waits ~50 ms for a token
        slow = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.sleep(0.1)
        with pytest.raises(BulkheadFullError):
            await c.get(chaos_server.url_for("/ok"))
        await slow
    waits = [r for r in caplog.records if hasattr(r, "waited")]
    assert waits and waits[0].levelno == logging.DEBUG and waits[0].waited > 0
    [full] = [r for r in caplog.records if hasattr(r, "max_concurrent")]
    assert full.levelno == logging.WARNING and full.max_concurrent == 1


async def test_breaker_transitions_are_logged_as_warnings(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every breaker state change is a WARNING with old and new state (the core's log)."""
    caplog.set_level(logging.WARNING, logger="httpx_resilience.breaker")
    chaos_server.route("/err", status=500)
    breaker = CircuitBreaker(2, 30, name="store_api")
    async with httpx.AsyncClient(
        transport=transport(config=NO_RETRY, circuit_breaker=breaker)
    ) as c:
        for _ in range(2):
            await c.get(chaos_server.url_for("/err"))
    [rec] = caplog.records
    assert (rec.breaker, rec.old_state, rec.new_state) == ("store_api", "closed", "open")


# -- Prometheus -----------------------------------------------------------------------


async def test_prometheus_counts_requests_retries_and_durations(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """503, 503, 200: one successful request, two retries by status, three timed attempts."""
    chaos_server.route("/items/42", statuses=[503, 503, 200])
    obs = PrometheusObserver(registry)
    async with AsyncHTTPClient(
        chaos_server.url, config=FAST, observers=[obs], service="catalog"
    ) as c:
        await c.get("/items/42")
    ns = "httpx_resilience"
    labels = {"service": "catalog", "method": "GET"}
    assert value(registry, f"{ns}_requests_total", **labels, status_class="2xx", outcome="success") == 1
    assert value(registry, f"{ns}_retries_total", service="catalog", reason="503") == 2
    assert value(registry, f"{ns}_attempt_duration_seconds_count", service="catalog", status_class="5xx") == 2
    assert value(registry, f"{ns}_attempt_duration_seconds_count", service="catalog", status_class="2xx") == 1
    assert value(registry, f"{ns}_request_duration_seconds_count", **labels, outcome="success") == 1
    assert value(registry, f"{ns}_requests_in_flight", service="catalog") == 0
    label_values = {v for m in registry.collect() for s in m.samples for v in s.labels.values()}
    assert not [v for v in label_values if "/" in v or "items" in v or "42" in v]


async def test_prometheus_failures_by_status_class_and_error(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """A final 500 counts as 5xx failure; a refused connection as error failure (error rate)."""
    chaos_server.route("/boom", status=500)
    obs = PrometheusObserver(registry)
    async with httpx.AsyncClient(transport=transport(obs, config=NO_RETRY)) as c:
        await c.get(chaos_server.url_for("/boom"))
        with pytest.raises(httpx.TransportError):
            await c.get(f"http://127.0.0.1:{closed_port()}/x")
    host = f"127.0.0.1:{chaos_server.port}"
    assert value(
        registry, "httpx_resilience_requests_total",
        service=host, method="GET", status_class="5xx", outcome="failure",
    ) == 1
    errors = [
        s for m in registry.collect() if m.name == "httpx_resilience_requests"
        for s in m.samples if s.labels.get("status_class") == "error"
    ]
    assert [s.value for s in errors if s.name.endswith("_total")] == [1]


async def test_store_api_circuit_breaker_state_gauge(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """Seed 000: store_api_circuit_breaker_state goes 0 → 1 (open) → 2 (half-open) → 0."""
    clock = FakeClock()
    breaker = CircuitBreaker(2, 30, name="store_api", clock=clock)
    obs = PrometheusObserver(registry, namespace="store_api")
    obs.watch_breaker(breaker)
    obs.watch_breaker(breaker)  # idempotent
    gauge = "store_api_circuit_breaker_state"
    assert value(registry, gauge, breaker="store_api") == 0
    chaos_server.route("/tires", statuses=[500, 500, 200])
    async with AsyncHTTPClient(
        chaos_server.url, config=NO_RETRY, circuit_breaker=breaker, observers=[obs]
    ) as c:
        await c.get("/tires")
        await c.get("/tires")
        assert value(registry, gauge, breaker="store_api") == 1
        clock.advance(31)
        assert breaker.state.value == "half_open"
        assert value(registry, gauge, breaker="store_api") == 2
        await c.get("/tires")
    assert value(registry, gauge, breaker="store_api") == 0
    for state in ("open", "half_open", "closed"):
        assert value(
            registry, "store_api_circuit_breaker_transitions_total", breaker="store_api", state=state
        ) == 1


async def test_per_host_breaker_children_are_exported(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """With scope="host", each host's child breaker gets its own gauge series."""
    breaker = CircuitBreaker(1, 30, scope="host")
    breaker.for_key("already.example")
    obs = PrometheusObserver(registry)
    obs.watch_breaker(breaker)
    assert value(registry, "httpx_resilience_circuit_breaker_state", breaker="already.example") == 0
    assert value(registry, "httpx_resilience_circuit_breaker_state", breaker="default") is None
    chaos_server.route("/x", status=502)
    async with httpx.AsyncClient(
        transport=transport(obs, config=NO_RETRY, circuit_breaker=breaker)
    ) as c:
        await c.get(chaos_server.url_for("/x"))
    host = f"127.0.0.1:{chaos_server.port}"
    assert value(registry, "httpx_resilience_circuit_breaker_state", breaker=host) == 1


async def test_limiter_waits_bulkhead_rejections_and_hedges_are_measured(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """Limiter waits feed a histogram; bulkhead rejections and hedges are counted."""
    chaos_server.route("/ok")
    chaos_server.route("/slow", latency=0.3)
    chaos_server.route("/hedge", steps=[Fault(latency=0.5), Fault()])
    obs = PrometheusObserver(registry)
    host = f"127.0.0.1:{chaos_server.port}"
    async with httpx.AsyncClient(
        transport=transport(obs, rate_limiter=TokenBucketRateLimiter(20, 1), bulkhead=Bulkhead(1))
    ) as c:
        await c.get(chaos_server.url_for("/ok"))
        await c.get(chaos_server.url_for("/ok"))
        slow = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.sleep(0.1)
        with pytest.raises(BulkheadFullError):
            await c.get(chaos_server.url_for("/ok"))
        await slow
    async with httpx.AsyncClient(
        transport=transport(obs, hedging=HedgingPolicy(0.05))
    ) as c:
        r = await c.get(chaos_server.url_for("/hedge"))
    assert r.status_code == 200
    assert (value(registry, "httpx_resilience_rate_limiter_wait_seconds_count", host=host) or 0) >= 1
    assert value(registry, "httpx_resilience_bulkhead_rejections_total", host=host) == 1
    assert value(registry, "httpx_resilience_hedges_total", service=host) == 1


async def test_label_values_are_capped(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """Beyond max_label_values distinct services, the rest are folded into "other"."""
    chaos_server.route("/ok")
    obs = PrometheusObserver(registry, namespace="capped", max_label_values=2)
    for name in ("a", "b", "c", "d"):
        async with AsyncHTTPClient(chaos_server.url, observers=[obs], service=name) as c:
            await c.get("/ok")
    services = {
        s.labels["service"] for m in registry.collect() if m.name == "capped_requests"
        for s in m.samples
    }
    assert services == {"a", "b", "other"}
    assert value(
        registry, "capped_requests_total",
        service="other", method="GET", status_class="2xx", outcome="success",
    ) == 2


async def test_metrics_middleware_attaches_itself_and_watches_the_breaker(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """MetricsMiddleware(registry) measures the client's pipeline and exports its breaker."""
    chaos_server.route("/ok", statuses=[503, 200])
    mw = MetricsMiddleware(registry, namespace="mw")
    breaker = CircuitBreaker(5, 30, name="orders")
    async with AsyncHTTPClient(
        chaos_server.url, config=FAST, middlewares=[mw], circuit_breaker=breaker, service="orders"
    ) as c:
        await c.get("/ok")
        await c.get("/ok")
        assert c.transport.observers.count(mw.observer) == 1
    assert value(registry, "mw_circuit_breaker_state", breaker="orders") == 0
    assert value(registry, "mw_retries_total", service="orders", reason="503") == 1
    assert value(
        registry, "mw_requests_total",
        service="orders", method="GET", status_class="2xx", outcome="success",
    ) == 2
    assert "MetricsMiddleware(PrometheusObserver(namespace='mw'" in repr(mw)


async def test_metrics_middleware_uses_the_default_registry(chaos_server: ChaosServer) -> None:
    """With no registry, MetricsMiddleware registers in prometheus_client.REGISTRY (shared families)."""
    chaos_server.route("/ok")
    first, second = MetricsMiddleware(namespace="default_reg"), MetricsMiddleware(namespace="default_reg")
    assert first.observer.metrics is second.observer.metrics
    async with AsyncHTTPClient(chaos_server.url, middlewares=[first], service="d") as c:
        await c.get("/ok")
    assert prometheus_client.REGISTRY.get_sample_value(
        "default_reg_requests_total",
        {"service": "d", "method": "GET", "status_class": "2xx", "outcome": "success"},
    ) == 1


async def test_cancelled_request_leaves_no_request_in_flight(
    chaos_server: ChaosServer, registry: CollectorRegistry, provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """A cancelled request is counted as cancelled, the in-flight gauge drops, its spans end."""
    chaos_server.route("/hang", hang=True)
    obs = PrometheusObserver(registry)
    tracing = TracingObserver(provider)
    async with httpx.AsyncClient(transport=transport(obs, tracing)) as c:
        task = asyncio.create_task(c.get(chaos_server.url_for("/hang")))
        await asyncio.sleep(0.2)
        host = f"127.0.0.1:{chaos_server.port}"
        assert value(registry, "httpx_resilience_requests_in_flight", service=host) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # the task's done-callbacks run
    assert value(registry, "httpx_resilience_requests_in_flight", service=host) == 0
    assert value(
        registry, "httpx_resilience_requests_total",
        service=host, method="GET", status_class="error", outcome="cancelled",
    ) == 1
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert {s.attributes["error.type"] for s in spans} == {"CancelledError"}


async def test_middlewares_end_a_cancelled_request_at_once(
    chaos_server: ChaosServer, registry: CollectorRegistry, provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """Through AsyncHTTPClient, the middlewares close a cancelled request in process_error."""
    chaos_server.route("/hang", hang=True)
    metrics, tracing = MetricsMiddleware(registry), TracingMiddleware(provider)
    async with AsyncHTTPClient(chaos_server.url, middlewares=[metrics, tracing], service="s") as c:

        async def call() -> None:
            try:
                await c.get("/hang")
            except asyncio.CancelledError:
                # process_error already ran: nothing is left open although the task lives on.
                assert len(exporter.get_finished_spans()) == 2
                assert value(registry, "httpx_resilience_requests_in_flight", service="s") == 0
                raise

        task = asyncio.create_task(call())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert value(
        registry, "httpx_resilience_requests_total",
        service="s", method="GET", status_class="error", outcome="cancelled",
    ) == 1


async def test_a_retry_refused_by_the_limiter_is_counted_once_as_failure(
    chaos_server: ChaosServer, registry: CollectorRegistry
) -> None:
    """A request whose retry the limiter refuses is counted once as a failure, not left in flight."""
    chaos_server.route("/limited", statuses=[503, 200])
    limiter = TokenBucketRateLimiter(0.5, 1, max_wait=0.01)
    async with AsyncHTTPClient(
        chaos_server.url, config=FAST, rate_limiter=limiter, service="lim",
        middlewares=[MetricsMiddleware(registry)],
    ) as c:
        with pytest.raises(RateLimiterTimeout):
            await c.get("/limited")
    assert value(registry, "httpx_resilience_requests_in_flight", service="lim") == 0
    assert value(
        registry, "httpx_resilience_requests_total",
        service="lim", method="GET", status_class="error", outcome="failure",
    ) == 1


async def test_metric_name_clash_is_a_configuration_error(registry: CollectorRegistry) -> None:
    """Metric names already taken in the registry by someone else raise ConfigurationError."""
    prometheus_client.Counter("clash_requests_total", "not ours", registry=registry)
    with pytest.raises(ValueError, match="namespace"):
        PrometheusObserver(registry, namespace="clash")


# -- OpenTelemetry --------------------------------------------------------------------


async def test_span_per_request_and_per_attempt_with_semconv(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """503 then 200: an INTERNAL request span over two CLIENT attempt spans, as the conventions ask."""
    chaos_server.route("/items", statuses=[503, 200])
    async with httpx.AsyncClient(transport=transport(TracingObserver(provider))) as c:
        await c.get(chaos_server.url_for("/items"), params={"api_key": "k-123", "q": "tires"})
    root, (first, second) = by_name(exporter.get_finished_spans())
    assert root.kind is trace.SpanKind.INTERNAL  # no logical CLIENT span above the attempts
    for span in (root, first, second):
        assert span.name == "GET"
        assert span.kind is (trace.SpanKind.INTERNAL if span is root else trace.SpanKind.CLIENT)
        attrs = span.attributes or {}
        assert attrs["http.request.method"] == "GET"
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == chaos_server.port
        assert attrs["url.full"].endswith("/items?api_key=%5BREDACTED%5D&q=tires") or (
            "api_key=[REDACTED]" in attrs["url.full"]
        )
    assert "http.request.resend_count" not in (first.attributes or {})
    assert (second.attributes or {})["http.request.resend_count"] == 1
    assert (first.attributes or {})["http.response.status_code"] == 503
    assert (first.attributes or {})["error.type"] == "503"
    assert first.status.status_code is trace.StatusCode.ERROR
    assert (second.attributes or {})["http.response.status_code"] == 200
    assert "error.type" not in (second.attributes or {})
    assert (root.attributes or {})["httpx_resilience.attempts"] == 2
    assert root.status.status_code is trace.StatusCode.UNSET
    assert [e.name for e in root.events] == ["retry_scheduled"]
    assert (root.events[0].attributes or {})["httpx_resilience.reason"].startswith("HTTP 503")


async def test_traceparent_is_injected_per_attempt(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Each attempt carries a W3C traceparent naming that attempt's span, under the caller's trace."""
    chaos_server.route("/tp", statuses=[502, 200])
    tracer = provider.get_tracer("test")
    async with httpx.AsyncClient(transport=transport(TracingObserver(provider))) as c:
        with tracer.start_as_current_span("handler") as parent:
            await c.get(chaos_server.url_for("/tp"))
    spans = exporter.get_finished_spans()
    root, attempts = by_name(tuple(s for s in spans if s.name != "handler"))
    assert root.parent is not None and root.parent.span_id == parent.get_span_context().span_id
    trace_id = f"{parent.get_span_context().trace_id:032x}"
    sent = [r.headers["traceparent"] for r in chaos_server.requests("/tp")]
    assert sent == [f"00-{trace_id}-{a.context.span_id:016x}-{sent[0][-2:]}" for a in attempts]


async def test_a_forwarded_traceparent_is_continued(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """With no active span, a traceparent set by the caller becomes the request span's parent."""
    chaos_server.route("/fwd")
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with httpx.AsyncClient(transport=transport(TracingObserver(provider))) as c:
        await c.get(chaos_server.url_for("/fwd"), headers={"traceparent": incoming})
    root, [attempt] = by_name(exporter.get_finished_spans())
    assert f"{root.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert root.parent is not None and f"{root.parent.span_id:016x}" == "b7ad6b7169203331"
    assert chaos_server.requests("/fwd")[0].headers["traceparent"].split("-")[2] == (
        f"{attempt.context.span_id:016x}"
    )


async def test_failed_request_spans_carry_error_type(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A refused connection ends both spans with error.type and an ERROR status."""
    async with httpx.AsyncClient(
        transport=transport(TracingObserver(provider), config=NO_RETRY)
    ) as c:
        with pytest.raises(httpx.TransportError) as info:
            await c.get(f"http://127.0.0.1:{closed_port()}/x")
    root, [attempt] = by_name(exporter.get_finished_spans())
    for span in (root, attempt):
        assert (span.attributes or {})["error.type"] == type(info.value).__name__
        assert span.status.status_code is trace.StatusCode.ERROR
        assert "http.response.status_code" not in (span.attributes or {})


async def test_limiter_hedge_and_breaker_become_span_events(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Limiter waits, hedges and breaker transitions are recorded as span events."""
    chaos_server.route("/ok")
    chaos_server.route("/hedge", steps=[Fault(latency=0.5), Fault()])
    chaos_server.route("/err", status=500)
    obs = TracingObserver(provider)
    breaker = CircuitBreaker(1, 30, name="b")
    obs.watch_breaker(breaker)
    obs.watch_breaker(breaker)
    async with httpx.AsyncClient(
        transport=transport(obs, rate_limiter=TokenBucketRateLimiter(20, 1))
    ) as c:
        await c.get(chaos_server.url_for("/ok"))
        await c.get(chaos_server.url_for("/ok"))
    async with httpx.AsyncClient(transport=transport(obs, hedging=HedgingPolicy(0.05))) as c:
        await c.get(chaos_server.url_for("/hedge"))
    async with httpx.AsyncClient(
        transport=transport(obs, config=NO_RETRY, circuit_breaker=breaker)
    ) as c:
        await c.get(chaos_server.url_for("/err"))
    events = {e.name: e for s in exporter.get_finished_spans() for e in s.events}
    assert (events["rate_limiter_wait"].attributes or {})["httpx_resilience.waited"] > 0
    assert (events["hedge_fired"].attributes or {})["httpx_resilience.hedge_number"] == 1
    transition = events["circuit_breaker_transition"].attributes or {}
    assert (transition["httpx_resilience.old_state"], transition["httpx_resilience.new_state"]) == (
        "closed", "open",
    )


async def test_breaker_transition_outside_a_request_goes_to_the_current_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A transition with no request in flight is added to the caller's active span, if any."""
    obs = TracingObserver(provider)
    breaker = CircuitBreaker(1, 30, name="manual")
    obs.watch_breaker(breaker)
    breaker.force_open()  # no active span: dropped silently
    with provider.get_tracer("t").start_as_current_span("admin"):
        breaker.force_closed()
    [admin] = exporter.get_finished_spans()
    assert [e.name for e in admin.events] == ["circuit_breaker_transition"]


async def test_bulkhead_rejection_is_a_short_error_span(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A request refused by the bulkhead leaves a span with error.type BulkheadFullError."""
    chaos_server.route("/slow", latency=0.3)
    async with httpx.AsyncClient(
        transport=transport(TracingObserver(provider), bulkhead=Bulkhead(1))
    ) as c:
        slow = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.sleep(0.1)
        with pytest.raises(BulkheadFullError):
            await c.get(chaos_server.url_for("/slow"))
        await slow
    [rejected] = [s for s in exporter.get_finished_spans() if s.events and s.events[0].name == "bulkhead_rejected"]
    assert (rejected.attributes or {})["error.type"] == "BulkheadFullError"
    assert (rejected.attributes or {})["server.port"] == chaos_server.port


async def test_tracing_middleware_uses_the_global_provider(
    chaos_server: ChaosServer, global_provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """TracingMiddleware() with no provider traces into the global one, once per client."""
    chaos_server.route("/ok", statuses=[500, 200])
    mw = TracingMiddleware()
    breaker = CircuitBreaker(1, 0.05, name="svc")
    async with AsyncHTTPClient(
        chaos_server.url, config=NO_RETRY, middlewares=[mw], service="svc", circuit_breaker=breaker
    ) as c:
        await c.get("/ok")
        await asyncio.sleep(0.06)
        await c.get("/ok")
        assert c.transport.observers.count(mw.observer) == 1
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    assert {(s.attributes or {}).get("httpx_resilience.service") for s in spans} == {"svc"}
    moves = [
        ((e.attributes or {})["httpx_resilience.old_state"], (e.attributes or {})["httpx_resilience.new_state"])
        for s in spans for e in s.events if e.name == "circuit_breaker_transition"
    ]
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert repr(mw).startswith("TracingMiddleware(TracingObserver(open=0")


async def test_open_requests_are_bounded(
    chaos_server: ChaosServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Beyond max_open requests in flight, the oldest one's spans are ended as abandoned."""
    chaos_server.route("/slow", latency=0.3)
    obs = TracingObserver(provider, max_open=1)
    async with httpx.AsyncClient(transport=transport(obs)) as c:
        first = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(c.get(chaos_server.url_for("/slow")))
        await asyncio.gather(first, second)
    spans = exporter.get_finished_spans()
    assert sorted((s.attributes or {}).get("error.type", "ok") for s in spans) == [
        "abandoned", "abandoned", "ok", "ok",
    ]
    assert repr(obs) == "TracingObserver(open=0, inject=True)"


async def test_inject_can_be_disabled(
    chaos_server: ChaosServer, provider: TracerProvider
) -> None:
    """TracingObserver(inject=False) sends no trace header."""
    chaos_server.route("/quiet")
    async with httpx.AsyncClient(
        transport=transport(TracingObserver(provider, inject=False))
    ) as c:
        await c.get(chaos_server.url_for("/quiet"))
    assert "traceparent" not in chaos_server.requests("/quiet")[0].headers


# -- no secret anywhere ---------------------------------------------------------------

SECRETS = ("tok-SECRET-bearer-123", "qs-SECRET-456", "hdr-SECRET-789", "u-pass-SECRET")
PII = ("+7 912 345-67-89", "79123456789", "john.doe@example.com", "jane@corp.example")


def _texts_of_spans(spans: tuple[ReadableSpan, ...]) -> list[str]:
    out: list[str] = []
    for s in spans:
        out += [s.name, str(s.status.description)]
        out += [f"{k}={v}" for k, v in (s.attributes or {}).items()]
        for e in s.events:
            out += [e.name, *(f"{k}={v}" for k, v in (e.attributes or {}).items())]
    return out


async def _leaky_session(
    server: ChaosServer, observers: list[Any], paths: tuple[str, ...]
) -> list[BaseException]:
    """Failing requests full of secrets and PII: 5xx after retries, and a refused connection."""
    errors: list[BaseException] = []
    async with AsyncHTTPClient(
        server.url, config=FAST, auth=BearerAuth(SECRETS[0]), observers=observers,
        middlewares=[LoggingMiddleware()], service="store",
    ) as c:
        headers = {"X-API-KEY": SECRETS[2], "X-Tenant": "t"}
        params = {"api_key": SECRETS[1], "phone": PII[0], "email": PII[3]}
        for path in paths:
            try:
                r = await c.get(path, headers=headers, params=params)
                r.raise_for_status()
            except HTTPClientError as exc:
                errors.append(exc)
    bad = f"http://user:{SECRETS[3]}@127.0.0.1:{closed_port()}/x"
    async with AsyncHTTPClient(config=NO_RETRY, observers=observers) as c:
        try:
            await c.get(bad, params={"token": SECRETS[1]})
        except HTTPClientError as exc:
            errors.append(exc)
    assert len(errors) == len(paths) + 1
    return errors


def _log_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = [r.getMessage() for r in records]
    texts += [f"{k}={v}" for r in records for k, v in vars(r).items() if k not in ("msg", "args")]
    return texts


def _assert_clean(texts: list[str], secrets: tuple[str, ...]) -> None:
    blob = "\n".join(texts)
    assert "[REDACTED]" in blob and "***" in blob
    leaks = {s: [line for line in blob.splitlines() if s in line][:3] for s in secrets if s in blob}
    assert not leaks


async def test_no_secret_or_pii_in_logs_errors_spans_or_metrics(
    chaos_server: ChaosServer,
    caplog: pytest.LogCaptureFixture,
    registry: CollectorRegistry,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """Bearer token, api_key and X-API-KEY values, passwords, phones and e-mails never show."""
    caplog.set_level(logging.DEBUG)
    chaos_server.route("/orders", status=503)
    chaos_server.route("/users/john.doe@example.com", status=500)
    redactor = Redactor(extra_headers={"X-Tenant"})
    observers = [
        LoggingObserver(redactor=redactor),
        PrometheusObserver(registry),
        TracingObserver(provider, redactor=redactor),
    ]
    errors = await _leaky_session(
        chaos_server, observers, ("/orders", "/users/john.doe@example.com")
    )
    texts = _log_texts(caplog.records)
    texts += [t for e in errors for t in (str(e), repr(e), str(e.__cause__ or ""))]
    texts += _texts_of_spans(exporter.get_finished_spans())
    texts.append(generate_latest(registry).decode())
    _assert_clean(texts, (*SECRETS, *PII, "john.doe"))


async def test_observers_mask_a_phone_number_in_the_url_path(
    chaos_server: ChaosServer,
    caplog: pytest.LogCaptureFixture,
    registry: CollectorRegistry,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """A phone number as a path segment is masked in the observers' logs, spans and metrics."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience.requests")
    chaos_server.route("/users/+79123456789/orders", status=503)
    observers = [LoggingObserver(), PrometheusObserver(registry), TracingObserver(provider)]
    await _leaky_session(chaos_server, observers, ("/users/+79123456789/orders",))
    mine = [r for r in caplog.records if r.name == "httpx_resilience.requests"]
    texts = _log_texts(mine) + _texts_of_spans(exporter.get_finished_spans())
    texts.append(generate_latest(registry).decode())
    _assert_clean(texts, (*SECRETS, *PII))


async def test_core_logs_and_errors_mask_a_phone_number_in_the_url_path(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A phone number as a path segment is masked in every log record and exception message."""
    caplog.set_level(logging.DEBUG)
    chaos_server.route("/users/+79123456789/orders", status=503)
    errors = await _leaky_session(chaos_server, [], ("/users/+79123456789/orders",))
    texts = _log_texts(caplog.records) + [t for e in errors for t in (str(e), repr(e))]
    _assert_clean(texts, (*SECRETS, *PII))


# -- secrets in the query string, whatever their name ------------------------------------

QUERY_SECRETS = {
    "api_token": "qs-api-token-SECRET-1",
    "private_token": "qs-private-token-SECRET-2",
    "jwt": "qs-jwt-SECRET-3",
    "auth_token": "qs-auth-token-SECRET-4",
    "sessionid": "qs-sessionid-SECRET-5",
    "pwd": "qs-pwd-SECRET-6",
}
QUERY_KEY = "qs-apikey-k-SECRET-7"


@pytest.fixture(params=("httpx", "native", "aiohttp"))
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport under test."""
    return str(request.param)


def _everything(
    errors: list[BaseException], records: list[logging.LogRecord], spans: tuple[ReadableSpan, ...]
) -> list[str]:
    import traceback

    texts = _log_texts(records) + _texts_of_spans(spans)
    for e in errors:
        texts += ["".join(traceback.format_exception(e)), str(e), repr(e)]
    return texts


async def test_query_secrets_and_the_api_keys_own_parameter_never_show(
    kind: str,
    chaos_server: ChaosServer,
    caplog: pytest.LogCaptureFixture,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """APIKeyAuth(name='k', location='query') and token-like parameters (api_token, jwt, pwd,
    sessionid...) are hidden in log lines, errors and url.full, over a 503 and a refused port."""
    from httpx_resilience import APIKeyAuth

    caplog.set_level(logging.DEBUG)
    chaos_server.route("/search", status=503)
    observers = [LoggingObserver(), TracingObserver(provider)]
    errors: list[BaseException] = []
    auth = APIKeyAuth(QUERY_KEY, name="k", location="query")
    async with AsyncHTTPClient(
        chaos_server.url, config=FAST, auth=auth, observers=observers,
        transport=kind, middlewares=[LoggingMiddleware()],  # type: ignore[arg-type]
    ) as c:
        try:
            await c.get("/search", params={**QUERY_SECRETS, "q": "tires"})
        except HTTPClientError as exc:
            errors.append(exc)
    assert f"k={QUERY_KEY}" in chaos_server.requests("/search")[0].query  # it was sent
    async with AsyncHTTPClient(
        f"http://127.0.0.1:{closed_port()}", config=NO_RETRY, auth=auth, observers=observers,
        transport=kind, middlewares=[LoggingMiddleware()],  # type: ignore[arg-type]
    ) as c:
        try:
            await c.get("/x", params=QUERY_SECRETS)
        except HTTPClientError as exc:
            errors.append(exc)
    assert len(errors) == 2
    spans = exporter.get_finished_spans()
    texts = _everything(errors, caplog.records, spans)
    blob = "\n".join(texts)
    leaks = [s for s in (*QUERY_SECRETS.values(), QUERY_KEY) if s in blob]
    assert not leaks, leaks
    full = [str((s.attributes or {}).get("url.full")) for s in spans if s.attributes]
    assert any("k=%5BREDACTED%5D" in u or "k=[REDACTED]" in u for u in full), full
    assert any("q=tires" in u for u in full)  # the rest of the query stays readable


async def test_user_info_in_the_url_never_shows_and_server_address_is_the_host(
    kind: str,
    chaos_server: ChaosServer,
    caplog: pytest.LogCaptureFixture,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """http://user:pass@host: url.full shows [REDACTED]@, server.address the bare host, and no
    log line or error carries the password."""
    caplog.set_level(logging.DEBUG)
    chaos_server.route("/private", status=503)
    password = "ui-pass-SECRET-8"
    url = f"http://svc:{password}@127.0.0.1:{chaos_server.port}/private"
    transport = ResilientTransport(
        make_transport(kind), config=FAST,
        observers=[LoggingObserver(), TracingObserver(provider)],
    )
    errors: list[BaseException] = []
    async with httpx.AsyncClient(transport=transport) as c:
        try:
            status = (await c.get(url)).status_code
        except httpx.HTTPError as exc:
            errors.append(exc)
            status = None
    spans = exporter.get_finished_spans()
    attrs = [dict(s.attributes or {}) for s in spans if "url.full" in (s.attributes or {})]
    assert attrs and all(a["server.address"] == "127.0.0.1" for a in attrs)
    assert all(a["server.port"] == chaos_server.port for a in attrs)
    assert all("[REDACTED]@" in str(a["url.full"]) for a in attrs)
    blob = "\n".join(_everything(errors, caplog.records, spans))
    assert password not in blob
    # httpx turned the user-info into an Authorization header; every transport must send it.
    assert status == 503, errors
