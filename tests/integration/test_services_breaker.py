"""Typed errors under every service facade, over real sockets against ChaosServer.

An open breaker is a ``CircuitBreakerOpenError`` under ``BaseAPIClient``, the
registry's ``ServiceClient``, ``StoreClient`` (status 503) and ``DaprClient``,
and still the facade's ``ExternalServiceError``; so are a rate-limiter or
bulkhead refusal and a timeout for their own classes. The Store's breaker
gauge shares one registry with ``PrometheusObserver``/``MetricsMiddleware``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from httpx_resilience import Bulkhead, MetricsMiddleware, PrometheusObserver, TokenBucketRateLimiter
from httpx_resilience.exceptions import (
    BulkheadFullError,
    CircuitBreakerOpenError,
    ExternalServiceError,
    RateLimiterTimeout,
    RequestTimeoutError,
)
from httpx_resilience.observe.prometheus import STATE_VALUES
from httpx_resilience.policies.breaker import CircuitState
from httpx_resilience.services import (
    BaseAPIClient,
    DaprClient,
    ServiceBulkheadFullError,
    ServiceCircuitOpenError,
    ServiceClient,
    ServiceRateLimiterTimeout,
    ServiceRegistry,
    ServiceTimeoutError,
    StoreClient,
    get_dapr_client,
    get_service_client,
)
from httpx_resilience.settings import Settings
from httpx_resilience.testing import ChaosServer, FakeClock
from httpx_resilience.transports import make_transport

KINDS = ("httpx", "native", "aiohttp")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HTTP_CLIENT_*, DAPR_* or STORE_API_* variable leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith(("HTTP_CLIENT_", "DAPR_", "STORE_API_")):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    """Cooldowns pass without sleeping."""
    return FakeClock()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport under the facade."""
    return str(request.param)


@pytest.fixture
async def inner(kind: str) -> AsyncIterator[Callable[[], httpx.AsyncBaseTransport]]:
    """Build inner transports of ``kind``; each is closed after the test."""
    made: list[httpx.AsyncBaseTransport] = []

    def build() -> httpx.AsyncBaseTransport:
        transport = make_transport(kind)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.aclose()


def assert_open_breaker(error: BaseException, service: str, status: int | None, cooldown: float) -> None:
    """``error`` is the facade's error and an open-breaker error, with the cooldown left."""
    assert isinstance(error, ExternalServiceError) and isinstance(error, CircuitBreakerOpenError)
    assert isinstance(error, ServiceCircuitOpenError) and isinstance(error, httpx.TransportError)
    assert error.service == service and error.status_code == status and error.name == service
    assert error.message.startswith(f"{service}: circuit breaker is open")
    assert 0 < error.retry_in <= cooldown and error.retry_after == error.retry_in
    assert "circuit breaker is open" in str(error) and service in str(error)
    assert isinstance(error.__cause__, CircuitBreakerOpenError)
    assert not isinstance(error.__cause__, ExternalServiceError)


def failing_route(server: ChaosServer, path: str, fault: str) -> None:
    """``path`` fails: a 500, or a connection reset before any byte."""
    if fault == "500":
        server.route(path, status=500)
    else:
        server.route(path, reset="before_headers")


# -- BaseAPIClient ---------------------------------------------------------------------------


class Orders(BaseAPIClient):
    """A service client as a user writes it."""

    service_name = "orders"


@pytest.mark.parametrize("fault", ["500", "reset"])
async def test_base_client_open_breaker_is_catchable_as_both(
    chaos_server: ChaosServer, clock: FakeClock, inner: Callable[[], httpx.AsyncBaseTransport], fault: str
) -> None:
    """Failures open the breaker; then `except CircuitBreakerOpenError` catches the facade's error."""
    failing_route(chaos_server, "/o", fault)
    settings = Settings(circuit_breaker_threshold=3, circuit_breaker_cooldown=30)
    async with Orders(chaos_server.url, settings=settings, max_retries=0, clock=clock, transport=inner()) as client:
        for _ in range(3):
            with pytest.raises(ExternalServiceError) as failed:
                await client.get("/o")
            assert not isinstance(failed.value, CircuitBreakerOpenError)
        assert client.breaker_state is CircuitState.OPEN
        clock.advance(10.0)
        try:
            await client.get("/o")
        except CircuitBreakerOpenError as exc:  # the point: the breaker's own type
            assert_open_breaker(exc, "orders", None, 20.0)
        else:
            pytest.fail("the open breaker did not refuse")
        assert chaos_server.count("/o") == 3  # nothing was sent
        clock.advance(20.0)
        chaos_server.route("/o", body={"ok": True})
        assert await client.get("/o") == {"ok": True}
        assert client.breaker_state is CircuitState.CLOSED


# -- the registry's ServiceClient ------------------------------------------------------------


async def test_service_client_open_breaker_is_catchable_as_both(
    chaos_server: ChaosServer, clock: FakeClock, inner: Callable[[], httpx.AsyncBaseTransport]
) -> None:
    """get_service_client: request() and stream() raise the typed error once the breaker is open."""
    chaos_server.route("/items", status=503)
    settings = Settings(
        retry_attempts=0,
        services={"master-data": {"base_url": chaos_server.url, "breaker_threshold": 2, "breaker_cooldown": 5}},
    )
    reg = ServiceRegistry(settings, clock=clock, transport=inner())
    async with get_service_client("master-data", registry=reg) as client:
        for _ in range(2):
            with pytest.raises(ExternalServiceError) as failed:
                await client.get("/items")
            assert failed.value.status_code == 503
        with pytest.raises(CircuitBreakerOpenError) as info:
            await client.get("/items")
        assert_open_breaker(info.value, "master-data", None, 5.0)
        with pytest.raises(CircuitBreakerOpenError) as streamed:
            async with client.stream("GET", "/items"):
                pass
        assert_open_breaker(streamed.value, "master-data", None, 5.0)
    assert chaos_server.count("/items") == 2
    await reg.aclose_all()


# -- StoreClient -----------------------------------------------------------------------------


async def test_store_open_breaker_is_503_and_catchable_as_both(
    chaos_server: ChaosServer, clock: FakeClock, caplog: pytest.LogCaptureFixture,
    inner: Callable[[], httpx.AsyncBaseTransport],
) -> None:
    """Seed 000: five failures open the breaker; then status 503, a CircuitBreakerOpenError, a WARNING."""
    chaos_server.route("/tires/1", status=500)
    async with StoreClient(
        chaos_server.url, "k", clock=clock, settings=Settings(), metrics=False, transport=inner()
    ) as store:
        for _ in range(5):
            with pytest.raises(ExternalServiceError) as failed:
                await store.get_tire(1)
            assert failed.value.status_code == 500
        with (
            caplog.at_level(logging.WARNING, logger="httpx_resilience.store"),
            pytest.raises(CircuitBreakerOpenError) as info,
        ):
            await store.get_tire(1)
        assert_open_breaker(info.value, "store-api", 503, 30.0)
        assert caplog.records[-1].levelno == logging.WARNING and "503" not in caplog.records[-1].getMessage()
        with pytest.raises(ExternalServiceError) as again:  # seed 000's StoreAPIError(503, ...)
            await store.check_availability(1)
        assert again.value.status_code == 503
    assert chaos_server.count("/tires/1") == 5 and chaos_server.count("/tires/1/availability") == 0


# -- Dapr ------------------------------------------------------------------------------------


async def test_dapr_open_breaker_is_catchable_as_both(
    chaos_server: ChaosServer, clock: FakeClock, inner: Callable[[], httpx.AsyncBaseTransport]
) -> None:
    """raise_on_error=True: three failures open the breaker, then the typed error; non-raising: False."""
    chaos_server.route("/v1.0/state/s/k", status=500)
    async with DaprClient(
        chaos_server.url, retry_attempts=0, raise_on_error=True, clock=clock, transport=inner()
    ) as dapr:
        for _ in range(3):
            with pytest.raises(ExternalServiceError) as failed:
                await dapr.get_state("s", "k")
            assert not isinstance(failed.value, CircuitBreakerOpenError)
        with pytest.raises(CircuitBreakerOpenError) as info:
            await dapr.save_state("s", "k", 1)
        assert_open_breaker(info.value, "dapr", None, 60.0)
        quiet = DaprClient(http=dapr.http_client)  # the same pool and breaker, non-raising
        assert await quiet.publish_event("ps", "t", {}) is False
    assert chaos_server.count() == 3


async def test_get_dapr_client_raises_the_typed_error(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """get_dapr_client(raise_on_error=True) over the shared pool: the same typed error."""
    chaos_server.route("/v1.0/publish/ps/t", status=503)
    reg = ServiceRegistry(clock=clock)
    async with get_dapr_client(endpoint=chaos_server.url, raise_on_error=True, registry=reg) as dapr:
        for _ in range(3):
            with pytest.raises(ExternalServiceError):
                await dapr.publish_event("ps", "t", {})
        with pytest.raises(CircuitBreakerOpenError) as info:
            await dapr.publish_event("ps", "t", {})
    assert_open_breaker(info.value, "dapr", None, 60.0)
    assert chaos_server.count() == 3
    await reg.aclose_all()


# -- the siblings: limiter, bulkhead, timeout ------------------------------------------------


async def test_rate_limiter_refusal_is_catchable_as_both(chaos_server: ChaosServer) -> None:
    """A limiter that will not wait: the facade's error is a RateLimiterTimeout with its figures."""
    chaos_server.route("/x")
    limiter = TokenBucketRateLimiter(0.5, 1, max_wait=0.0)
    async with ServiceClient("svc", chaos_server.url, rate_limiter=limiter) as client:
        await client.get("/x")
        with pytest.raises(RateLimiterTimeout) as info:
            await client.get("/x")
    error = info.value
    assert isinstance(error, ExternalServiceError) and isinstance(error, ServiceRateLimiterTimeout)
    assert error.service == "svc" and error.status_code is None and error.needed is not None
    assert error.needed > 0 and error.waited >= 0 and isinstance(error.__cause__, RateLimiterTimeout)
    assert chaos_server.count("/x") == 1


async def test_bulkhead_refusal_is_catchable_as_both(chaos_server: ChaosServer) -> None:
    """A full bulkhead: the refused call's error is a BulkheadFullError with the cap."""
    chaos_server.route("/slow", latency=0.3)
    async with ServiceClient("svc", chaos_server.url, bulkhead=Bulkhead(1, max_queue=0)) as client:
        results = await asyncio.gather(client.get("/slow"), client.get("/slow"), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], BulkheadFullError)
    error = refused[0]
    assert isinstance(error, ExternalServiceError) and isinstance(error, ServiceBulkheadFullError)
    assert (error.max_concurrent, error.max_queue) == (1, 0) and error.service == "svc"
    assert chaos_server.count("/slow") == 1


async def test_total_timeout_alone_in_the_environment_times_out_as_a_timeout(
    chaos_server: ChaosServer, monkeypatch: pytest.MonkeyPatch, inner: Callable[[], httpx.AsyncBaseTransport]
) -> None:
    """HTTP_CLIENT_TOTAL_TIMEOUT=0.3 alone: accepted, each attempt gets 0.3 s, and the error is a
    RequestTimeoutError (an httpx.TimeoutException) as well as the facade's ExternalServiceError."""
    monkeypatch.setenv("HTTP_CLIENT_TOTAL_TIMEOUT", "0.3")
    chaos_server.route("/hang", hang=True)
    async with Orders(chaos_server.url, transport=inner()) as client:
        assert client.config.timeout == 0.3
        start = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            await client.get("/hang")
        elapsed = time.monotonic() - start
    error = info.value
    assert isinstance(error, ExternalServiceError) and isinstance(error, ServiceTimeoutError)
    assert isinstance(error, httpx.TimeoutException) and error.service == "orders"
    assert error.timeout is not None and error.timeout <= 0.3 + 1e-9
    assert elapsed < 3.0  # bounded by the 0.3 s deadline, not the 30 s default (generous on a busy host)
    assert chaos_server.count("/hang") >= 1


async def test_max_connections_alone_in_the_environment_bounds_the_pool(
    chaos_server: ChaosServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_CLIENT_MAX_CONNECTIONS=2 alone: accepted (keep-alive follows), and the pool holds 2."""
    monkeypatch.setenv("HTTP_CLIENT_MAX_CONNECTIONS", "2")
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__POOL__BASE_URL", chaos_server.url)
    chaos_server.route("/p", latency=0.05)
    reg = ServiceRegistry()
    async with get_service_client("pool", registry=reg) as client:
        assert (client.config.max_connections, client.config.max_keepalive_connections) == (2, 2)
        await asyncio.gather(*(client.get("/p") for _ in range(8)))
    assert chaos_server.count("/p") == 8 and chaos_server.connections_opened <= 2
    await reg.aclose_all()


# -- one breaker gauge, one registry ---------------------------------------------------------


async def test_store_gauge_and_observer_share_one_registry(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """StoreClient, PrometheusObserver and MetricsMiddleware for "store_api" live in one registry,
    with one definition of store_api_circuit_breaker_state and the observer's encoding."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    observer = PrometheusObserver(registry, namespace="store_api")
    store = StoreClient(
        chaos_server.url, "k", clock=clock, settings=Settings(), metrics_registry=registry, observers=[observer]
    )
    MetricsMiddleware(registry, namespace="store_api")  # a third user of the names: no duplicate error
    assert store.gauge is observer.metrics.breaker_state and store.metrics_observer is not None

    def state() -> float | None:
        return registry.get_sample_value("store_api_circuit_breaker_state", {"breaker": "store-api"})

    chaos_server.route("/tires/2", status=500)
    async with store:
        assert state() == STATE_VALUES["closed"]
        for _ in range(5):
            with pytest.raises(ExternalServiceError):
                await store.get_tire(2)
        assert state() == STATE_VALUES["open"] == 1
        clock.advance(30.0)
        assert store.circuit_breaker.state is CircuitState.HALF_OPEN
        assert state() == STATE_VALUES["half_open"] == 2
    text = generate_latest(registry).decode()
    assert text.count("# TYPE store_api_circuit_breaker_state gauge") == 1
    samples: dict[str, Any] = {"service": "store-api", "method": "GET", "status_class": "5xx", "outcome": "failure"}
    assert registry.get_sample_value("store_api_requests_total", samples) == 5


def test_typed_service_errors_can_be_built_directly() -> None:
    """Each typed class is usable on its own (for tests and fakes of a facade)."""
    error = ServiceCircuitOpenError("svc", "down", 503, retry_in=2.5, url="http://h/x?token=s3")
    assert isinstance(error, CircuitBreakerOpenError) and isinstance(error, ExternalServiceError)
    assert (error.service, error.status_code, error.name, error.retry_after) == ("svc", 503, "svc", 2.5)
    assert "s3" not in str(error) and str(error).startswith("svc: down")
    timeout = ServiceTimeoutError("svc", "slow", timeout=1.0, phase="total")
    assert isinstance(timeout, httpx.TimeoutException) and (timeout.timeout, timeout.phase) == (1.0, "total")
    assert ServiceRateLimiterTimeout("svc", "busy", waited=0.5).waited == 0.5
    assert ServiceBulkheadFullError("svc", "full", max_concurrent=3).max_concurrent == 3
