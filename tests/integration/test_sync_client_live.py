"""HTTPClient over real sockets (ChaosServer): retries, breaker, limiter, errors that keep
their httpx class, models, middlewares, streams and one client shared by 8 threads."""

from __future__ import annotations

import logging
import socket
import threading

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from httpx_resilience import (
    BearerAuth,
    CircuitBreaker,
    CircuitBreakerOpenError,
    ClientConfig,
    HTTPClient,
    HTTPRequestError,
    HTTPResponse,
    LoggingMiddleware,
    RateLimiterTimeout,
    RequestIdMiddleware,
    RequestTimeoutError,
    RetryExhaustedError,
    TokenBucketRateLimiter,
)
from httpx_resilience.middleware.metrics import MetricsMiddleware
from httpx_resilience.middleware.tracing import TracingMiddleware
from httpx_resilience.testing import ChaosServer

FAST = ClientConfig(
    timeout=2.0, retry_backoff_factor=0.01, retry_max_delay=0.05, retry_jitter="none"
)
NO_RETRY = ClientConfig(timeout=2.0, retry_attempts=0)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def total(registry: CollectorRegistry, name: str) -> float:
    """The sum of a counter's samples over all its labels."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def test_retries_until_the_upstream_answers(chaos_server: ChaosServer) -> None:
    """503, 503, 200: one logical request, three attempts at the server, one request id."""
    chaos_server.route("/flaky", statuses=[503, 503, 200], body={"ok": True})
    with HTTPClient(chaos_server.url, config=FAST) as client:
        response = client.get("/flaky")
    assert isinstance(response, HTTPResponse)
    assert response.status_code == 200 and response.attempts == 3
    assert response.json_data == {"ok": True} and response.elapsed > 0
    ids = {r.headers["X-Request-Id"] for r in chaos_server.requests("/flaky")}
    assert chaos_server.count("/flaky") == 3 and len(ids) == 1
    assert response.request_id in ids


def test_retries_that_run_out_raise_the_async_clients_error(chaos_server: ChaosServer) -> None:
    """Always 503: RetryExhaustedError that is an httpx.HTTPStatusError, 4 attempts (3 retries)."""
    chaos_server.route("/down", status=503)
    with HTTPClient(chaos_server.url, config=FAST) as client, pytest.raises(
        RetryExhaustedError
    ) as info:
        client.get("/down")
    assert isinstance(info.value, httpx.HTTPStatusError) and info.value.attempts == 4
    assert chaos_server.count("/down") == 4


def test_an_open_breaker_refuses_without_sending(chaos_server: ChaosServer) -> None:
    """Two 500s open the breaker; the third request is refused before anything is sent,
    as a CircuitBreakerOpenError that is an httpx.TransportError."""
    chaos_server.route("/fail", status=500)
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=60.0)
    with HTTPClient(chaos_server.url, config=NO_RETRY, circuit_breaker=breaker) as client:
        assert client.get("/fail").status_code == 500
        assert client.get("/fail").status_code == 500
        with pytest.raises(CircuitBreakerOpenError) as info:
            client.get("/fail")
    assert isinstance(info.value, httpx.TransportError)
    assert chaos_server.count("/fail") == 2


def test_a_limiter_that_cannot_grant_in_time_refuses(chaos_server: ChaosServer) -> None:
    """One token, refilled every 10 s, a wait of at most 10 ms: the second request is
    refused (RateLimiterTimeout), nothing sent for it."""
    chaos_server.route("/lim", status=200)
    limiter = TokenBucketRateLimiter(0.1, 1, max_wait=0.01)
    with HTTPClient(chaos_server.url, config=NO_RETRY, rate_limiter=limiter) as client:
        assert client.get("/lim").status_code == 200
        with pytest.raises(RateLimiterTimeout):
            client.get("/lim")
    assert chaos_server.count("/lim") == 1


def test_errors_keep_their_httpx_class(chaos_server: ChaosServer) -> None:
    """A refused connection is an httpx.ConnectError and an HTTPRequestError; a slow
    answer an httpx.ReadTimeout and a RequestTimeoutError."""
    with HTTPClient(f"http://127.0.0.1:{closed_port()}", config=NO_RETRY) as client, pytest.raises(
        HTTPRequestError
    ) as refused:
        client.get("/x")
    assert isinstance(refused.value, httpx.ConnectError)
    chaos_server.route("/slow", latency=2.0)
    slow = ClientConfig(timeout=0.2, retry_attempts=0)
    with HTTPClient(chaos_server.url, config=slow) as client, pytest.raises(
        RequestTimeoutError
    ) as timed_out:
        client.get("/slow")
    assert isinstance(timed_out.value, httpx.ReadTimeout)


def test_middlewares_and_metrics_under_the_sync_client(
    chaos_server: ChaosServer, caplog: pytest.LogCaptureFixture
) -> None:
    """RequestIdMiddleware's header reaches the server on every attempt; LoggingMiddleware
    logs the final response; MetricsMiddleware counts the request and its retry."""
    chaos_server.route("/m", statuses=[502, 200])
    registry = CollectorRegistry()
    middlewares = [
        RequestIdMiddleware("X-Corr", generator=lambda: "corr-1"),
        LoggingMiddleware(level=logging.INFO),
        MetricsMiddleware(registry),
    ]
    with caplog.at_level(logging.INFO, logger="httpx_resilience.http"), HTTPClient(
        chaos_server.url, config=FAST, middlewares=middlewares, service="m-api"
    ) as client:
        client.post("/m", json={"a": 1}, idempotency_key="idem-1")
    assert [r.headers["X-Corr"] for r in chaos_server.requests("/m")] == ["corr-1", "corr-1"]
    assert any("POST" in r.getMessage() and "-> 200" in r.getMessage() for r in caplog.records)
    assert total(registry, "httpx_resilience_requests_total") == 1
    assert total(registry, "httpx_resilience_retries_total") == 1


def test_tracing_under_the_sync_client(chaos_server: ChaosServer) -> None:
    """TracingMiddleware: one span for the logical request, one per attempt below it, and
    each attempt carries a traceparent of its own span."""
    chaos_server.route("/traced", statuses=[503, 200])
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingMiddleware(provider, metrics=False)
    with HTTPClient(chaos_server.url, config=FAST, middlewares=[tracing]) as client:
        assert client.get("/traced").status_code == 200
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1 and len(spans) == 3
    attempts = [s for s in spans if s.parent is not None]
    assert {s.parent.span_id for s in attempts if s.parent} == {roots[0].context.span_id}
    sent = [r.headers["traceparent"] for r in chaos_server.requests("/traced")]
    assert [f"{s.context.span_id:016x}" in t for s, t in zip(
        sorted(attempts, key=lambda s: s.start_time or 0), sent, strict=True
    )] == [True, True]


def test_auth_is_sent_on_every_attempt(chaos_server: ChaosServer) -> None:
    """BearerAuth under HTTPClient: the credential reaches the server on the retry too."""
    chaos_server.route("/auth", statuses=[503, 200])
    with HTTPClient(chaos_server.url, config=FAST, auth=BearerAuth("tok-1")) as client:
        assert client.get("/auth").status_code == 200
    assert [r.headers["Authorization"] for r in chaos_server.requests("/auth")] == [
        "Bearer tok-1", "Bearer tok-1"
    ]


def test_stream_reads_the_body_as_it_arrives(chaos_server: ChaosServer) -> None:
    """stream(): the response head, then the caller reads 64 KiB in chunks."""
    chaos_server.route("/big", body_size=65536)
    with HTTPClient(chaos_server.url, config=FAST) as client, client.stream(
        "GET", "/big"
    ) as response:
        assert response.status_code == 200
        received = sum(len(chunk) for chunk in response.iter_bytes())
    assert received == 65536 and response.is_closed


def test_one_client_shared_by_eight_threads(chaos_server: ChaosServer) -> None:
    """8 threads × 10 requests through one client (one pool, one breaker): every request
    answered, each with its own request id, the breaker closed at the end."""
    chaos_server.route("/t", status=200)
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(client: HTTPClient) -> None:
        try:
            for _ in range(10):
                status = client.get("/t").status_code
                with lock:
                    statuses.append(status)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with HTTPClient(chaos_server.url, config=FAST, circuit_breaker=breaker) as client:
        threads = [threading.Thread(target=work, args=(client,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and statuses == [200] * 80
    ids = {r.headers["X-Request-Id"] for r in chaos_server.requests("/t")}
    assert chaos_server.count("/t") == 80 and len(ids) == 80
    assert breaker.state.name == "CLOSED"
