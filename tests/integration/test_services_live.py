"""Service clients over real sockets against ChaosServer: registry, BaseAPIClient, Dapr and StoreClient."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest

from httpx_resilience.client import AsyncHTTPClient
from httpx_resilience.exceptions import (
    CircuitBreakerOpenError,
    ConfigurationError,
    ExternalServiceError,
    HTTPRequestError,
    InvalidRequestError,
    RateLimitError,
    RequestTimeoutError,
    RetryExhaustedError,
)
from httpx_resilience.models import HTTPResponse
from httpx_resilience.policies.breaker import CircuitBreaker, CircuitState
from httpx_resilience.services import (
    BaseAPIClient,
    DaprClient,
    ServiceClient,
    ServiceRegistry,
    StoreClient,
    aclose_all,
    as_external_error,
    dapr_endpoint,
    default_registry,
    get_dapr_client,
    get_service_client,
    status_error,
    trim_results,
)
from httpx_resilience.settings import Settings
from httpx_resilience.testing import ChaosServer, FakeClock, Fault

PHONE = "+380 67 123 45 67"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HTTP_CLIENT_*, DAPR_* or STORE_API_* variable leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith(("HTTP_CLIENT_", "DAPR_", "STORE_API_")):
            monkeypatch.delenv(name)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock: backoff and cooldowns pass without sleeping."""
    return FakeClock()


def settings_for(server: ChaosServer, **service: Any) -> Settings:
    """Settings with one service 'master-data' pointing at ``server``."""
    return Settings(
        retry_backoff_factor=0.01,
        retry_jitter="none",
        services={"master-data": {"base_url": server.url, **service}},
    )


# -- the registry: get_service_client -----------------------------------------------------


async def test_one_pooled_client_per_service_and_connections_reused(chaos_server: ChaosServer) -> None:
    """Every `async with` gets the same open client; three requests use one TCP connection."""
    reg = ServiceRegistry(settings_for(chaos_server))
    seen = []
    for spelling in ("master-data", "MASTER_DATA", "Master-Data"):
        async with get_service_client(spelling, registry=reg) as client:
            assert isinstance(client, AsyncHTTPClient)
            assert (await client.get("/api/v1/items")).status_code == 200
            seen.append(client)
        assert not client.is_closed
    assert seen[0] is seen[1] is seen[2] and len(reg) == 1
    assert chaos_server.connections_opened == 1
    await reg.aclose_all()
    assert seen[0].is_closed and len(reg) == 0


async def test_api_key_header_from_settings_and_caller_headers(chaos_server: ChaosServer) -> None:
    """The configured API key and the caller's headers reach the service."""
    reg = ServiceRegistry(settings_for(chaos_server, api_key="md-key", headers={"X-Tenant": "t1"}))
    async with get_service_client("master-data", registry=reg) as client:
        await client.get("/api/v1/items", headers={"X-Trace": "abc"})
    req = chaos_server.requests("/api/v1/items")[0]
    assert req.headers["x-api-key"] == "md-key" and req.headers["x-tenant"] == "t1"
    assert req.headers["x-trace"] == "abc"
    await reg.aclose_all()


async def test_default_registry_reads_services_from_the_environment(
    chaos_server: ChaosServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 004's call works with only HTTP_CLIENT_SERVICES__MASTER_DATA__* set."""
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__BASE_URL", chaos_server.url)
    monkeypatch.setenv("HTTP_CLIENT_SERVICES__MASTER_DATA__API_KEY", "env-key")
    monkeypatch.setattr(default_registry(), "_settings", None)
    try:
        async with get_service_client("master-data") as client:
            response = await client.get("/api/v1/items")
        assert response.status_code == 200
        assert chaos_server.requests("/api/v1/items")[0].headers["x-api-key"] == "env-key"
    finally:
        await aclose_all()
    assert client.is_closed


async def test_distinct_services_get_distinct_clients(chaos_server: ChaosServer) -> None:
    """Two service names get two clients (each with its own breaker)."""
    s = Settings(services={"a": {"base_url": chaos_server.url}, "b": {"base_url": chaos_server.url}})
    reg = ServiceRegistry(s)
    a, b = reg.client("a"), reg.client("b")
    assert a is not b and a.circuit_breaker is not b.circuit_breaker
    await reg.aclose_all()


async def test_changed_settings_build_a_new_client_and_retire_the_old(chaos_server: ChaosServer) -> None:
    """New settings for a service give a fresh client; aclose_all closes both."""
    reg = ServiceRegistry(settings_for(chaos_server))
    old = reg.client("master-data")
    new = reg.client("master-data", settings=settings_for(chaos_server, timeout=3))
    assert new is not old and new.config.timeout == 3
    assert reg.client("master-data", settings=settings_for(chaos_server, timeout=3)) is new
    await reg.aclose_all()
    assert old.is_closed and new.is_closed


def test_each_event_loop_gets_its_own_pool(chaos_server: ChaosServer) -> None:
    """A pool belongs to its event loop: a second loop gets its own working client."""
    reg = ServiceRegistry(settings_for(chaos_server))

    async def use() -> ServiceClient:
        client = reg.client("master-data")
        assert (await client.get("/api/v1/items")).status_code == 200
        assert reg.client("master-data") is client
        return client

    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        first, second = (loop.run_until_complete(use()) for loop in loops)
        assert first is not second and not first.is_closed and not second.is_closed
        for loop in loops:
            loop.run_until_complete(reg.aclose_all())
        assert first.is_closed and second.is_closed
    finally:
        for loop in loops:
            loop.close()
    assert chaos_server.count("/api/v1/items") == 2


async def test_unknown_service_lists_names_and_the_variable(chaos_server: ChaosServer) -> None:
    """An unknown name raises ConfigurationError listing services and the variable to set."""
    reg = ServiceRegistry(settings_for(chaos_server))
    with pytest.raises(ConfigurationError) as info:
        async with get_service_client("billing", registry=reg):
            pass
    assert "master_data" in str(info.value)
    assert "HTTP_CLIENT_SERVICES__BILLING__BASE_URL" in str(info.value)


async def test_service_client_retries_with_one_request_id(chaos_server: ChaosServer) -> None:
    """503, 503, 200: retried to success, the same X-Request-Id on every attempt."""
    chaos_server.route("/api/v1/items", statuses=[503, 503, 200])
    reg = ServiceRegistry(settings_for(chaos_server))
    async with get_service_client("master-data", registry=reg) as client:
        response = await client.get("/api/v1/items")
    assert response.status_code == 200 and response.attempts == 3
    assert len({r.headers["x-request-id"] for r in chaos_server.requests("/api/v1/items")}) == 1
    await reg.aclose_all()


async def test_exhausted_retries_surface_as_external_service_error(chaos_server: ChaosServer) -> None:
    """Persistent 500s become ExternalServiceError(service, status 500) chained to RetryExhaustedError."""
    chaos_server.route("/api/v1/items", status=500)
    reg = ServiceRegistry(settings_for(chaos_server, retry_attempts=2))
    async with get_service_client("master-data", registry=reg) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.get("/api/v1/items")
    err = info.value
    assert err.service == "master-data" and err.status_code == 500
    assert isinstance(err.__cause__, RetryExhaustedError)
    assert str(err).startswith("master-data:") and "/api/v1/items" in str(err)
    assert chaos_server.count("/api/v1/items") == 3
    await reg.aclose_all()


async def test_error_status_raises_once_or_is_returned_on_request(chaos_server: ChaosServer) -> None:
    """A 404 is not retried and raises with status 404; raise_for_status=False returns it."""
    chaos_server.route("/api/v1/items/9", status=404, body={"detail": f"no item for {PHONE}"})
    reg = ServiceRegistry(settings_for(chaos_server))
    client = reg.client("master-data")
    with pytest.raises(ExternalServiceError) as info:
        await client.get("/api/v1/items/9")
    assert info.value.status_code == 404 and "no item for" in str(info.value)
    assert "123 45 67" not in str(info.value)  # the phone is masked
    response = await client.get("/api/v1/items/9", raise_for_status=False)
    assert response.status_code == 404 and chaos_server.count("/api/v1/items/9") == 2
    await reg.aclose_all()


async def test_post_is_sent_once_on_503(chaos_server: ChaosServer) -> None:
    """A POST without idempotency key is never retried; the 503 is an ExternalServiceError."""
    chaos_server.route("/orders", statuses=[503, 200])
    reg = ServiceRegistry(settings_for(chaos_server))
    with pytest.raises(ExternalServiceError) as info:
        await reg.client("master-data").post("/orders", json={"sku": 1})
    assert info.value.status_code == 503 and chaos_server.count("/orders") == 1
    await reg.aclose_all()


async def test_connection_refused_is_wrapped(chaos_server: ChaosServer) -> None:
    """Nothing listening: ExternalServiceError without status, chained to our transport error."""
    url = chaos_server.url
    chaos_server.stop()
    reg = ServiceRegistry(Settings(retry_attempts=1, retry_backoff_factor=0.01,
                                   services={"gone": {"base_url": url}}))
    with pytest.raises(ExternalServiceError) as info:
        await reg.client("gone").get("/x")
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, (HTTPRequestError, RetryExhaustedError))
    await reg.aclose_all()


async def test_attempt_timeout_is_wrapped(chaos_server: ChaosServer) -> None:
    """A slow service times out per attempt; the error is ExternalServiceError from a timeout."""
    chaos_server.route("/slow", latency=1.0)
    reg = ServiceRegistry(settings_for(chaos_server, timeout=0.2, retry_attempts=0))
    with pytest.raises(ExternalServiceError) as info:
        await reg.client("master-data").get("/slow")
    assert isinstance(info.value.__cause__, RequestTimeoutError)
    await reg.aclose_all()


async def test_service_breaker_opens_and_fails_fast(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """With breaker_threshold=2 the third call is refused without reaching the service."""
    chaos_server.route("/api/v1/items", status=500)
    reg = ServiceRegistry(settings_for(chaos_server, retry_attempts=0, breaker_threshold=2), clock=clock)
    client = reg.client("master-data")
    for _ in range(2):
        with pytest.raises(ExternalServiceError):
            await client.get("/api/v1/items")
    with pytest.raises(ExternalServiceError, match="circuit breaker is open") as info:
        await client.get("/api/v1/items")
    assert info.value.status_code is None and chaos_server.count("/api/v1/items") == 2
    await reg.aclose_all()


async def test_shared_client_survives_close_attempts(chaos_server: ChaosServer) -> None:
    """aclose() and `async with` on the shared client leave the pool open for others."""
    reg = ServiceRegistry(settings_for(chaos_server))
    client = reg.client("master-data")
    async with client:
        pass
    await client.aclose()
    assert not client.is_closed and (await client.get("/a")).status_code == 200
    await reg.aclose_all()
    assert client.is_closed


async def test_private_service_client_closes_normally(chaos_server: ChaosServer) -> None:
    """A ServiceClient made directly (not shared) is closed by `async with` and by aclose()."""
    async with ServiceClient("direct", chaos_server.url) as client:
        assert (await client.get("/a")).status_code == 200
    assert client.is_closed and "direct" in repr(client)
    other = ServiceClient("direct", chaos_server.url)
    await other.aclose()
    assert other.is_closed


async def test_registry_configure_len_repr_and_close_failures(
    chaos_server: ChaosServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """configure() swaps settings; len/repr show pooled clients; a failing close is logged, not raised."""
    reg = ServiceRegistry()
    await reg.aclose_all()  # nothing pooled yet: a no-op
    reg.configure(settings_for(chaos_server))
    client = reg.client("master-data")
    assert len(reg) == 1 and "clients=1" in repr(reg)

    async def broken() -> None:
        raise RuntimeError("close failed")

    monkeypatch.setattr(client, "_close_pool", broken)
    with caplog.at_level(logging.ERROR, logger="httpx_resilience.services"):
        await reg.aclose_all()
    assert "failed; ignored" in caplog.text and len(reg) == 0
    await ServiceClient._close_pool(client)


def test_registry_len_outside_a_loop(chaos_server: ChaosServer) -> None:
    """Outside an event loop nothing is pooled, and asking for a client says a loop is needed."""
    reg = ServiceRegistry(settings_for(chaos_server))
    assert len(reg) == 0
    with pytest.raises(RuntimeError):
        reg.client("master-data")


async def test_stream_yields_and_wraps_errors(chaos_server: ChaosServer) -> None:
    """stream() streams a body, and a refused connection becomes ExternalServiceError."""
    chaos_server.route("/big", body_size=2048)
    reg = ServiceRegistry(settings_for(chaos_server))
    client = reg.client("master-data")
    async with client.stream("GET", "/big") as response:
        assert len(await response.aread()) == 2048
    chaos_server.route("/dead", reset="before_headers")
    with pytest.raises(ExternalServiceError):
        async with client.stream("GET", "/dead"):
            pass
    chaos_server.route("/denied", status=403, body={"detail": "no access"})
    with pytest.raises(ExternalServiceError, match="no access") as info:
        async with client.stream("GET", "/denied"):
            pass
    assert info.value.status_code == 403
    async with client.stream("GET", "/denied", raise_for_status=False) as response:
        assert response.status_code == 403
    await reg.aclose_all()


async def test_caller_mistakes_are_not_wrapped(chaos_server: ChaosServer) -> None:
    """An impossible request is an InvalidRequestError, not a service failure."""
    reg = ServiceRegistry(settings_for(chaos_server))
    with pytest.raises(InvalidRequestError):
        await reg.client("master-data").request("NOT A METHOD", "/x")
    with pytest.raises(InvalidRequestError):
        async with reg.client("master-data").stream("NOT A METHOD", "/x"):
            pass
    await reg.aclose_all()


async def test_jwt_with_api_key_fallback_from_settings(chaos_server: ChaosServer) -> None:
    """jwt_secret + api_key sends a signed Bearer JWT (the key is only the fallback)."""
    reg = ServiceRegistry(settings_for(chaos_server, jwt_secret="s" * 32, api_key="k", jwt_issuer="cart"))
    await reg.client("master-data").get("/who")
    auth = chaos_server.requests("/who")[0].headers["authorization"]
    assert auth.startswith("Bearer ") and auth.count(".") == 2
    await reg.aclose_all()


# -- BaseAPIClient -------------------------------------------------------------------------


class OrdersClient(BaseAPIClient):
    """A subclass as a user would write it."""

    service_name = "orders"
    default_headers: ClassVar[Mapping[str, str]] = {"X-Client": "orders-sdk"}

    async def order(self, order_id: int) -> Any:
        return await self.get(f"/orders/{order_id}")


def orders(server: ChaosServer, clock: FakeClock, **kw: Any) -> OrdersClient:
    return OrdersClient(server.url, settings=Settings(), clock=clock, **kw)


async def test_retry_schedule_is_1_2_4_seconds(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """Three retries wait exactly 1, 2 and 4 s (no jitter), then the JSON is returned."""
    chaos_server.route("/orders/1", steps=[Fault(status=503)] * 3 + [Fault(body={"id": 1})])
    async with orders(chaos_server, clock) as client:
        assert await client.order(1) == {"id": 1}
    assert clock.sleeps == [1.0, 2.0, 4.0] and chaos_server.count("/orders/1") == 4
    assert chaos_server.requests("/orders/1")[0].headers["x-client"] == "orders-sdk"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retried_statuses(chaos_server: ChaosServer, clock: FakeClock, status: int) -> None:
    """429 and 5xx are retried once and then succeed."""
    chaos_server.route("/orders/2", statuses=[status, 200])
    async with orders(chaos_server, clock) as client:
        assert (await client.order(2))["ok"] is True
    assert chaos_server.count("/orders/2") == 2 and clock.sleeps == [1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_other_4xx_are_never_retried(chaos_server: ChaosServer, clock: FakeClock, status: int) -> None:
    """Client errors fail at once with their status; the service sees one request."""
    chaos_server.route("/orders/3", status=status)
    async with orders(chaos_server, clock) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.order(3)
    assert info.value.status_code == status and info.value.service == "orders"
    assert chaos_server.count("/orders/3") == 1 and clock.sleeps == []


async def test_timeout_then_success(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """An attempt that times out is retried after 1 s."""
    chaos_server.route("/orders/4", steps=[Fault(latency=1.0), Fault(body={"id": 4})])
    async with orders(chaos_server, clock, timeout=0.2) as client:
        assert await client.order(4) == {"id": 4}
    assert clock.sleeps == [1.0]


async def test_connection_error_then_success(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """A reset connection is retried for a GET."""
    chaos_server.route("/orders/5", steps=[Fault(reset="before_headers"), Fault(body={"id": 5})])
    async with orders(chaos_server, clock) as client:
        assert await client.order(5) == {"id": 5}
    assert chaos_server.count("/orders/5") == 2


async def test_exhaustion_names_the_service(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """Four 503s: ExternalServiceError(orders, 503) chained to RetryExhaustedError."""
    chaos_server.route("/orders/6", status=503)
    async with orders(chaos_server, clock) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.order(6)
    assert info.value.status_code == 503 and "orders:" in str(info.value)
    assert isinstance(info.value.__cause__, RetryExhaustedError)
    assert chaos_server.count("/orders/6") == 4


async def test_final_429_keeps_its_status(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """A 429 to the end is ExternalServiceError(status 429) chained to RateLimitError."""
    chaos_server.route("/orders/7", status=429)
    async with orders(chaos_server, clock, max_retries=1) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.order(7)
    assert info.value.status_code == 429 and isinstance(info.value.__cause__, RateLimitError)


async def test_breaker_opens_after_5_failures_and_fails_fast(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """Five failed attempts open the breaker; later calls never reach the service."""
    chaos_server.route("/orders/8", status=500)
    async with orders(chaos_server, clock) as client:
        with pytest.raises(ExternalServiceError):
            await client.order(8)  # 4 attempts
        with pytest.raises(ExternalServiceError, match="circuit breaker is open"):
            await client.order(8)  # the 5th attempt opens it; the retry is refused
        assert client.breaker_state is CircuitState.OPEN
        with pytest.raises(ExternalServiceError, match="circuit breaker is open") as info:
            await client.order(8)
    assert info.value.status_code is None and chaos_server.count("/orders/8") == 5


async def test_half_open_lets_one_probe_through(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """After the 30 s cooldown one probe goes out; a concurrent call fails fast; success closes."""
    chaos_server.route("/orders/9", status=500)
    async with orders(chaos_server, clock, max_retries=0) as client:
        for _ in range(5):
            with pytest.raises(ExternalServiceError):
                await client.order(9)
        assert client.breaker_state is CircuitState.OPEN
        clock.advance(30.0)
        chaos_server.route("/orders/9", latency=0.2, body={"id": 9})
        results = await asyncio.gather(client.order(9), client.order(9), return_exceptions=True)
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], ExternalServiceError)
        assert isinstance(refused[0], CircuitBreakerOpenError)  # the probe slot is taken
        assert {9} == {r["id"] for r in results if isinstance(r, dict)}
        assert chaos_server.count("/orders/9") == 5 + 1  # one probe only
        assert client.breaker_state is CircuitState.CLOSED


async def test_breaker_thresholds_come_from_settings(chaos_server: ChaosServer) -> None:
    """circuit_breaker_threshold/cooldown in Settings configure the breaker; one half-open probe."""
    s = Settings(circuit_breaker_threshold=2, circuit_breaker_cooldown=7)
    client = BaseAPIClient(chaos_server.url, settings=s)
    assert client.circuit_breaker.failure_threshold == 2
    assert client.circuit_breaker.recovery_timeout == 7 and client.circuit_breaker.half_open_max_calls == 1
    assert client.service_name == "127.0.0.1"


async def test_post_retried_only_with_idempotency_key(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """POST on 503 is sent once; with idempotency_key it is retried with the same key."""
    chaos_server.route("/pay", statuses=[503, 200])
    async with orders(chaos_server, clock) as client:
        with pytest.raises(ExternalServiceError):
            await client.post("/pay", json={"amount": 1})
        assert chaos_server.count("/pay") == 1
        chaos_server.route("/pay", statuses=[503, 200])
        assert (await client.post("/pay", json={"amount": 1}, idempotency_key="k-1"))["ok"]
    assert [r.headers["idempotency-key"] for r in chaos_server.requests("/pay")[1:]] == ["k-1"] * 2


async def test_not_found_ok_returns_none(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """With not_found_ok a 404 is None from get() and the response from request()."""
    chaos_server.route("/orders/10", status=404)
    async with orders(chaos_server, clock, not_found_ok=True) as client:
        assert await client.order(10) is None
        assert (await client.request("GET", "/orders/10")).status_code == 404
        with pytest.raises(ExternalServiceError):
            await client.request("GET", "/orders/10", not_found_ok=False)


async def test_helpers_return_json_none_or_the_response(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """put/patch/delete parse JSON; 204 gives None; a text body gives the HTTPResponse."""
    chaos_server.route("/empty", status=204)
    chaos_server.route("/text", body="plain words")
    async with orders(chaos_server, clock) as client:
        assert (await client.put("/orders/1", json={"a": 1}))["method"] == "PUT"
        assert (await client.patch("/orders/1", json={"a": 1}))["method"] == "PATCH"
        assert await client.delete("/empty") is None
        text = await client.get("/text")
        assert isinstance(text, HTTPResponse) and text.text == "plain words"


async def test_malformed_json_is_an_external_service_error(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """A JSON content type with a broken body raises ExternalServiceError with the status."""
    chaos_server.route("/bad", malformed_json=True)
    seen: list[ExternalServiceError] = []

    class Watching(OrdersClient):
        def on_error(self, error: ExternalServiceError) -> None:
            seen.append(error)

    async with Watching(chaos_server.url, settings=Settings(), clock=clock) as client:
        with pytest.raises(ExternalServiceError, match="not valid JSON") as info:
            await client.get("/bad")
    assert info.value.status_code == 200 and seen == [info.value]


async def test_lazy_client_close_and_reopen(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """No client before the first request; close() closes it; the next request opens a new one."""
    client = orders(chaos_server, clock)
    assert client.http_client is None
    await client.order(1)
    first = client.http_client
    assert first is not None
    await client.close()
    assert first.is_closed and client.http_client is None
    await client.close()  # idempotent
    await client.order(1)
    assert client.http_client is not None and client.http_client is not first
    await client.aclose()
    assert "orders" in repr(client)


async def test_base_url_from_configured_service(chaos_server: ChaosServer) -> None:
    """A subclass naming a configured service takes its URL and credentials from Settings."""
    s = Settings(services={"orders": {"base_url": chaos_server.url, "bearer_token": "tok"}})
    async with OrdersClient(settings=s) as client:
        await client.order(1)
    assert chaos_server.requests("/orders/1")[0].headers["authorization"] == "Bearer tok"


def test_missing_base_url_names_the_variable() -> None:
    """Without any URL the error names HTTP_CLIENT_SERVICES__ORDERS__BASE_URL."""
    with pytest.raises(ConfigurationError, match="HTTP_CLIENT_SERVICES__ORDERS__BASE_URL"):
        OrdersClient(settings=Settings())
    with pytest.raises(ConfigurationError, match="base_url"):
        BaseAPIClient(settings=Settings())


def test_error_helpers_describe_bodies() -> None:
    """status_error quotes the server's message, trims long text and handles empty bodies."""
    long = HTTPResponse(500, {"content-type": "text/plain"}, b"x" * 500, url="http://s/a")
    err = status_error("svc", long, "GET")
    assert err.status_code == 500 and "…" in str(err) and len(str(err)) < 400
    empty = status_error("svc", HTTPResponse(403, url="http://s/b"))
    assert "HTTP 403 Forbidden [" in str(empty) and "credentials" in str(empty)
    other = status_error("svc", HTTPResponse(400, content=b'{"code": 7}'), "POST", "http://s/c")
    assert '{"code": 7}' in str(other) and "POST http://s/c" in str(other)
    same = ExternalServiceError("svc", "x", 500)
    assert as_external_error("svc", same) is same
    refused = as_external_error("svc", CircuitBreakerOpenError("svc", 3.0))
    assert "next probe in 3.0 s" in str(refused) and refused.status_code is None


async def test_invalid_request_is_not_wrapped(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """A malformed method raises InvalidRequestError unchanged."""
    async with orders(chaos_server, clock) as client:
        with pytest.raises(InvalidRequestError):
            await client.request("NOT A METHOD", "/x")


# -- Dapr -----------------------------------------------------------------------------------


def dapr(server: ChaosServer, clock: FakeClock, **kw: Any) -> DaprClient:
    kw.setdefault("retry_backoff_factor", 0.01)
    return DaprClient(server.url, api_token="dapr-secret", clock=clock, **kw)


async def test_publish_event_posts_json_with_the_token(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """publish_event → POST /v1.0/publish/{pubsub}/{topic}, JSON body, dapr-api-token header."""
    chaos_server.route("/v1.0/publish/pubsub/orders", status=204)
    async with dapr(chaos_server, clock) as client:
        assert await client.publish_event("pubsub", "orders", {"id": 7}) is True
    req = chaos_server.requests("/v1.0/publish/pubsub/orders")[0]
    assert req.method == "POST" and req.json() == {"id": 7}
    assert req.headers["dapr-api-token"] == "dapr-secret"
    assert req.headers["content-type"] == "application/json"


async def test_publish_raw_bytes_metadata_and_content_type(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """Bytes are sent as is; metadata goes to metadata.* query parameters; content_type is kept."""
    async with dapr(chaos_server, clock) as client:
        assert await client.publish_event("ps", "t", b"\x01\x02", metadata={"ttlInSeconds": "60"})
        assert await client.publish_event("ps", "t", "hi", content_type="text/plain")
        assert await client.publish_event(
            "ps", "t", {"specversion": "1.0"}, content_type="application/cloudevents+json"
        )
    raw, text, cloud = chaos_server.requests("/v1.0/publish/ps/t")
    assert raw.body == b"\x01\x02" and raw.query == "metadata.ttlInSeconds=60"
    assert raw.headers["content-type"] == "application/octet-stream"
    assert text.body == b"hi" and text.headers["content-type"] == "text/plain"
    assert cloud.json() == {"specversion": "1.0"}
    assert cloud.headers["content-type"] == "application/cloudevents+json"


async def test_save_state_sends_key_value_list(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """save_state → POST /v1.0/state/{store} with [{"key", "value"}] (etag, metadata kept)."""
    chaos_server.route("/v1.0/state/statestore", status=204)
    async with dapr(chaos_server, clock) as client:
        assert await client.save_state("statestore", "key", {"value": "data"}) is True
        assert await client.save_state("statestore", "k2", 1, etag="3", metadata={"ttlInSeconds": "5"})
    first, second = chaos_server.requests("/v1.0/state/statestore")
    assert first.json() == [{"key": "key", "value": {"value": "data"}}]
    assert second.json() == [{"key": "k2", "value": 1, "etag": "3", "metadata": {"ttlInSeconds": "5"}}]


async def test_get_state_values_and_missing_keys(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """get_state returns the JSON value; 204 and 404 mean None; a non-JSON value is text."""
    chaos_server.route("/v1.0/state/s/hit", body={"value": "data"})
    chaos_server.route("/v1.0/state/s/none", status=204)
    chaos_server.route("/v1.0/state/s/gone", status=404)
    chaos_server.route("/v1.0/state/s/raw", body="plain")
    async with dapr(chaos_server, clock) as client:
        assert await client.get_state("s", "hit") == {"value": "data"}
        assert await client.get_state("s", "none") is None
        assert await client.get_state("s", "gone") is None
        assert await client.get_state("s", "raw", consistency="strong") == "plain"
    assert chaos_server.requests("/v1.0/state/s/raw")[0].query == "consistency=strong"
    assert chaos_server.count("/v1.0/state/s/gone") == 1  # a missing key is not retried


async def test_keys_are_url_quoted(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """A key with '/' or spaces stays one path segment."""
    async with dapr(chaos_server, clock) as client:
        await client.get_state("s", "a/b c")
    assert chaos_server.requests()[0].path == "/v1.0/state/s/a%2Fb%20c"


async def test_delete_state_with_etag(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """delete_state → DELETE /v1.0/state/{store}/{key} with If-Match for an etag."""
    chaos_server.route("/v1.0/state/s/k", status=204)
    async with dapr(chaos_server, clock) as client:
        assert await client.delete_state("s", "k", etag="7") is True
    req = chaos_server.requests("/v1.0/state/s/k")[0]
    assert req.method == "DELETE" and req.headers["if-match"] == "7"


async def test_bulk_state(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """save_bulk_state posts every pair; get_bulk_state maps each key to its data or None."""
    chaos_server.route(
        "/v1.0/state/s/bulk",
        body=[{"key": "a", "data": {"n": 1}, "etag": "1"}, {"key": "b"}, "junk"],
    )
    async with dapr(chaos_server, clock) as client:
        assert await client.save_bulk_state("s", {"a": 1, "b": 2}) is True
        assert await client.save_bulk_state("s", [("c", 3)]) is True
        found = await client.get_bulk_state("s", ["a", "b", "c"], parallelism=2)
        with pytest.raises(InvalidRequestError):
            await client.save_bulk_state("s", {})
    assert found == {"a": {"n": 1}, "b": None, "c": None}
    saves = chaos_server.requests("/v1.0/state/s")
    assert saves[0].json() == [{"key": "a", "value": 1}, {"key": "b", "value": 2}]
    assert chaos_server.requests("/v1.0/state/s/bulk")[0].json() == {"keys": ["a", "b", "c"], "parallelism": 2}


async def test_failures_return_false_or_none_and_log(
    chaos_server: ChaosServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Non-blocking mode: a 500 gives False/None and an ERROR log without the payload."""
    for path in ("/v1.0/publish/ps/t", "/v1.0/state/s", "/v1.0/state/s/k", "/v1.0/state/s/bulk"):
        chaos_server.route(path, status=500, body={"errorCode": "ERR_X", "message": "boom"})
    async with dapr(chaos_server, clock, retry_attempts=0, failure_threshold=10) as client:
        with caplog.at_level(logging.ERROR, logger="httpx_resilience.dapr"):
            assert await client.publish_event("ps", "t", {"secret-payload": 1}) is False
            assert await client.save_state("s", "k", 1) is False
            assert await client.get_state("s", "k") is None
            assert await client.delete_state("s", "k") is False
            assert await client.get_bulk_state("s", ["k"]) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 5 and all("boom" in m for m in messages)
    assert not any("secret-payload" in m for m in messages)
    assert "publish_event" in messages[0] and "topic='t'" in messages[0]


async def test_raise_on_error_raises_external_service_error(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """raise_on_error=True raises ExternalServiceError('dapr', ..., status) instead."""
    chaos_server.route("/v1.0/state/s/k", status=500, body={"message": "store down"})
    async with dapr(chaos_server, clock, retry_attempts=0, raise_on_error=True) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.get_state("s", "k")
    assert info.value.service == "dapr" and info.value.status_code == 500
    assert "store down" in str(info.value) and "/v1.0/state/s/k" in str(info.value)


async def test_empty_names_always_raise(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """Caller mistakes (empty names, unserialisable data) raise even in non-blocking mode."""
    async with dapr(chaos_server, clock) as client:
        with pytest.raises(InvalidRequestError):
            await client.get_state("", "k")
        with pytest.raises(InvalidRequestError):
            await client.save_state("s", " ", 1)
        with pytest.raises(InvalidRequestError):
            await client.publish_event("ps", "t", object())
    assert chaos_server.count() == 0


async def test_dapr_client_over_a_given_http_client_does_not_close_it(chaos_server: ChaosServer) -> None:
    """DaprClient(http=...) uses that client and leaves it open on exit."""
    http = AsyncHTTPClient(chaos_server.url, circuit_breaker=CircuitBreaker(3, 60.0, name="dapr"))
    async with DaprClient(http=http) as client:
        assert client.endpoint == chaos_server.url and await client.delete_state("s", "k")
    assert not http.is_closed
    await http.aclose()


async def test_dapr_breaker_3_failures_60_seconds(
    chaos_server: ChaosServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Three failures open the breaker; calls then fail fast (WARNING) until a probe after 60 s."""
    chaos_server.route("/v1.0/publish/ps/t", status=500)
    async with dapr(chaos_server, clock, retry_attempts=0) as client:
        for _ in range(3):
            assert await client.publish_event("ps", "t", {}) is False
        assert client.circuit_breaker.state is CircuitState.OPEN
        with caplog.at_level(logging.WARNING, logger="httpx_resilience.dapr"):
            assert await client.publish_event("ps", "t", {}) is False
        assert caplog.records[-1].levelno == logging.WARNING
        assert chaos_server.count("/v1.0/publish/ps/t") == 3
        clock.advance(59.0)
        assert await client.publish_event("ps", "t", {}) is False
        assert chaos_server.count("/v1.0/publish/ps/t") == 3
        clock.advance(1.0)
        chaos_server.route("/v1.0/publish/ps/t", status=204)
        assert await client.publish_event("ps", "t", {}) is True
        assert client.circuit_breaker.state is CircuitState.CLOSED
        assert "closed" in repr(client)


async def test_state_ops_retry_but_publish_does_not(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """get/save/bulk-get state are retried on 503; a publish is sent once."""
    for path in ("/v1.0/publish/ps/t", "/v1.0/state/s", "/v1.0/state/s/k", "/v1.0/state/s/bulk"):
        chaos_server.route(path, statuses=[503, 200])
    async with dapr(chaos_server, clock) as client:
        assert await client.publish_event("ps", "t", {}) is False
        assert await client.save_state("s", "k", 1) is True
        assert await client.get_state("s", "k") is not None
        assert await client.get_bulk_state("s", ["k"]) == {"k": None}
    assert chaos_server.count("/v1.0/publish/ps/t") == 1
    assert chaos_server.count("/v1.0/state/s") == 2 and chaos_server.count("/v1.0/state/s/k") == 2


async def test_bulk_answer_that_is_not_json(chaos_server: ChaosServer, clock: FakeClock) -> None:
    """A broken bulk answer is a failure: None (or ExternalServiceError when raising)."""
    chaos_server.route("/v1.0/state/s/bulk", malformed_json=True)
    async with dapr(chaos_server, clock) as client:
        assert await client.get_bulk_state("s", ["a"]) is None
    async with dapr(chaos_server, clock, raise_on_error=True) as client:
        with pytest.raises(ExternalServiceError, match="not JSON"):
            await client.get_bulk_state("s", ["a"])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:3500"),
        ({"DAPR_HTTP_PORT": "3601"}, "http://127.0.0.1:3601"),
        ({"DAPR_HTTP_PORT": "3601", "DAPR_RUNTIME_HOST": "dapr"}, "http://dapr:3601"),
        ({"DAPR_RUNTIME_HOST": "::1"}, "http://[::1]:3500"),
        ({"DAPR_HTTP_ENDPOINT": "https://dapr.svc:443/", "DAPR_HTTP_PORT": "1"}, "https://dapr.svc:443"),
    ],
)
def test_dapr_endpoint_from_environment(env: dict[str, str], expected: str) -> None:
    """DAPR_HTTP_ENDPOINT wins; otherwise DAPR_RUNTIME_HOST and DAPR_HTTP_PORT (default 3500)."""
    assert dapr_endpoint(env) == expected


@pytest.mark.parametrize(
    ("env", "var"),
    [({"DAPR_HTTP_PORT": "http"}, "DAPR_HTTP_PORT"), ({"DAPR_HTTP_PORT": "70000"}, "DAPR_HTTP_PORT"),
     ({"DAPR_HTTP_ENDPOINT": "localhost:3500"}, "DAPR_HTTP_ENDPOINT")],
)
def test_bad_dapr_environment_names_the_variable(env: dict[str, str], var: str) -> None:
    """An invalid port or endpoint raises ConfigurationError naming the variable."""
    with pytest.raises(ConfigurationError, match=var):
        dapr_endpoint(env)


async def test_get_dapr_client_from_env_shares_one_pool(
    chaos_server: ChaosServer, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """get_dapr_client() uses DAPR_HTTP_ENDPOINT/DAPR_API_TOKEN; blocks share pool and breaker."""
    monkeypatch.setenv("DAPR_HTTP_ENDPOINT", chaos_server.url)
    monkeypatch.setenv("DAPR_API_TOKEN", "env-token")
    reg = ServiceRegistry(clock=clock)
    async with get_dapr_client(registry=reg) as first:
        assert await first.save_state("statestore", "key", {"value": "data"})
    async with get_dapr_client(registry=reg, raise_on_error=True) as second:
        assert await second.get_state("statestore", "key") is not None
    assert first.http_client is second.http_client and not first.http_client.is_closed
    assert first.circuit_breaker is second.circuit_breaker and second.raise_on_error
    assert {r.headers["dapr-api-token"] for r in chaos_server.requests()} == {"env-token"}
    assert chaos_server.connections_opened == 1
    await reg.aclose_all()
    assert first.http_client.is_closed


async def test_get_dapr_client_default_registry(chaos_server: ChaosServer) -> None:
    """Without a registry the process-wide one holds the pool; aclose_all() closes it."""
    async with get_dapr_client(endpoint=chaos_server.url, api_token="") as client:
        assert await client.publish_event("ps", "t", {"a": 1})
    assert "dapr-api-token" not in chaos_server.requests()[0].headers
    await aclose_all()
    assert client.http_client.is_closed


# -- StoreClient ---------------------------------------------------------------------------


@pytest.fixture
def store_server(chaos_server: ChaosServer) -> Iterator[ChaosServer]:
    """A chaos server with Store API routes: 8 tyres with images and descriptions."""
    tyres = [
        {"id": i, "name": f"Tyre {i}", "image": f"/img/{i}.png", "description": "long text", "price": 100 + i}
        for i in range(8)
    ]
    chaos_server.route("/tires/search", body={"items": tyres, "total": 8})
    chaos_server.route("/vehicles/tires", body=tyres[:2])
    yield chaos_server


def store(server: ChaosServer, clock: FakeClock, **kw: Any) -> StoreClient:
    kw.setdefault("metrics", False)
    return StoreClient(server.url, "store-key", clock=clock, settings=Settings(), **kw)


async def test_store_sends_bearer_and_a_uuid_request_id(store_server: ChaosServer, clock: FakeClock) -> None:
    """Authorization: Bearer <key>, and a new UUID X-Request-Id per logical request."""
    async with store(store_server, clock) as client:
        await client.search_tires({"width": 205})
        await client.search_tires({"width": 215})
        assert client.config.timeout == 5.0
    first, second = store_server.requests("/tires/search")
    assert first.headers["authorization"] == "Bearer store-key"
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1] and all(uuid.UUID(i) for i in ids)


async def test_search_results_are_trimmed_for_an_llm(store_server: ChaosServer, clock: FakeClock) -> None:
    """At most 5 items, without image/description; the total is kept."""
    async with store(store_server, clock) as client:
        result = await client.search_tires({"width": 205, "season": None})
    assert result["total"] == 8 and result["shown"] == 5 and len(result["items"]) == 5
    assert all("image" not in t and "description" not in t for t in result["items"])
    assert result["items"][0] == {"id": 0, "name": "Tyre 0", "price": 100}
    assert store_server.requests("/tires/search")[0].query == "width=205"


async def test_vehicle_params_switch_the_endpoint(store_server: ChaosServer, clock: FakeClock) -> None:
    """vehicle_* parameters use GET /vehicles/tires with the prefix dropped."""
    async with store(store_server, clock) as client:
        result = await client.search_tires({"vehicle_make": "Toyota", "vehicle_model": "Camry",
                                            "vehicle_year": 2020, "season": "winter"})
        fit = await client.get_vehicle_tires("VW", "Golf", 2019, "summer")
        await client.get_vehicle_tires("VW", "Golf", 2019)
    assert result["total"] == 2 and fit["shown"] == 2
    queries = [r.query for r in store_server.requests("/vehicles/tires")]
    assert queries == [
        "make=Toyota&model=Camry&year=2020&season=winter",
        "make=VW&model=Golf&year=2019&season=summer",
        "make=VW&model=Golf&year=2019",
    ]
    assert store_server.count("/tires/search") == 0


async def test_not_found_is_not_an_error(store_server: ChaosServer, clock: FakeClock) -> None:
    """get_tire 404 → None; check_availability 404 → available False; neither is retried."""
    store_server.route("/tires/99", status=404)
    store_server.route("/tires/99/availability", status=404)
    store_server.route("/tires/1", body={"id": 1, "name": "Tyre 1"})
    store_server.route("/tires/1/availability", body={"available": True, "stock": 4})
    async with store(store_server, clock) as client:
        assert await client.get_tire(99) is None
        assert await client.check_availability(99) == {
            "tire_id": "99", "available": False, "message": "Tire not found",
        }
        assert await client.get_tire(1) == {"id": 1, "name": "Tyre 1"}
        assert await client.check_availability("1") == {"available": True, "stock": 4}
        with pytest.raises(InvalidRequestError):
            await client.get_tire(" ")
    assert store_server.count("/tires/99") == 1 and clock.sleeps == []


async def test_401_is_logged_critical(
    store_server: ChaosServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 raises ExternalServiceError(401) and logs CRITICAL about the API key."""
    store_server.route("/tires/1", status=401)
    async with store(store_server, clock) as client:
        with (
            caplog.at_level(logging.ERROR, logger="httpx_resilience.store"),
            pytest.raises(ExternalServiceError) as info,
        ):
            await client.get_tire(1)
    assert info.value.status_code == 401 and info.value.service == "store-api"
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "STORE_API_KEY" in critical[0].getMessage()
    assert "store-key" not in caplog.text


async def test_retry_only_on_429_and_503(store_server: ChaosServer, clock: FakeClock) -> None:
    """503 then 200 is retried after 1 s; a 500 is not retried at all."""
    store_server.route("/tires/1", statuses=[503, 200])
    store_server.route("/tires/2", statuses=[500, 200])
    async with store(store_server, clock) as client:
        assert (await client.get_tire(1)) is not None
        with pytest.raises(ExternalServiceError) as info:
            await client.get_tire(2)
    assert clock.sleeps == [1.0] and info.value.status_code == 500
    assert store_server.count("/tires/1") == 2 and store_server.count("/tires/2") == 1


async def test_at_most_two_retries_1s_then_2s(store_server: ChaosServer, clock: FakeClock) -> None:
    """Three 503s: three requests, waits of 1 s and 2 s, then ExternalServiceError(503)."""
    store_server.route("/tires/3", status=503)
    async with store(store_server, clock) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.get_tire(3)
    assert info.value.status_code == 503 and store_server.count("/tires/3") == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_retry_after_is_honoured(store_server: ChaosServer, clock: FakeClock) -> None:
    """429 with Retry-After: 3 waits 3 s instead of the 1 s backoff."""
    store_server.route("/tires/4", steps=[Fault(status=429, retry_after=3), Fault(body={"id": 4})])
    async with store(store_server, clock) as client:
        assert await client.get_tire(4) == {"id": 4}
    assert clock.sleeps == [3.0]


async def test_timeouts_are_not_retried(store_server: ChaosServer, clock: FakeClock) -> None:
    """A timed-out attempt is not retried (only 429/503 are)."""
    store_server.route("/tires/5", latency=1.0)
    async with store(store_server, clock, timeout=0.2) as client:
        with pytest.raises(ExternalServiceError) as info:
            await client.get_tire(5)
    assert isinstance(info.value.__cause__, RequestTimeoutError) and store_server.count("/tires/5") == 1


async def test_phone_numbers_are_masked_in_logs(
    store_server: ChaosServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A phone in parameters or in an error body never reaches the logs or the error text."""
    store_server.route("/tires/search", status=422, body={"detail": f"bad phone {PHONE}"})
    async with store(store_server, clock) as client:
        with caplog.at_level(logging.DEBUG), pytest.raises(ExternalServiceError) as info:
            await client.search_tires({"phone": PHONE, "width": 205})
    assert "123 45 67" not in caplog.text and "123 45 67" not in str(info.value)
    assert "+**********67" in caplog.text  # masked, still recognisable
    assert any(r.name == "httpx_resilience.store" and r.levelno == logging.ERROR for r in caplog.records)


async def test_store_breaker_opens_after_5_and_gauge_follows(store_server: ChaosServer, clock: FakeClock) -> None:
    """Five 500s open the breaker (gauge 1); after 30 s a probe (gauge 2, half-open) closes it (gauge 0).

    The gauge is PrometheusObserver's ``store_api_circuit_breaker_state`` with
    its one encoding (0 closed, 1 open, 2 half-open), labelled by breaker.
    """
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()

    def gauge() -> float | None:
        return registry.get_sample_value("store_api_circuit_breaker_state", {"breaker": "store-api"})

    store_server.route("/tires/6", status=500)
    async with store(store_server, clock, metrics=True, metrics_registry=registry) as client:
        assert gauge() == 0
        for _ in range(5):
            with pytest.raises(ExternalServiceError):
                await client.get_tire(6)
        assert gauge() == 1
        with pytest.raises(ExternalServiceError, match="circuit breaker is open"):
            await client.get_tire(6)
        assert store_server.count("/tires/6") == 5
        clock.advance(30.0)
        store_server.route("/tires/6", body={"id": 6})
        seen: list[float | None] = []
        client.circuit_breaker.add_listener(lambda t: seen.append(gauge()))
        assert await client.get_tire(6) == {"id": 6}
        assert seen == [2, 0] and gauge() == 0


async def test_gauge_is_optional(
    store_server: ChaosServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without prometheus_client the client works and has no gauge."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    async with store(store_server, clock, metrics=True) as client:
        assert client.gauge is None
        assert (await client.search_tires({}))["shown"] == 5


def test_gauge_name_taken_by_another_collector(caplog: pytest.LogCaptureFixture) -> None:
    """If another collector owns the metric name, no gauge is wired and a WARNING says why.

    Two clients on one registry share the gauge family.
    """
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    Gauge("store_api_circuit_breaker_state", "someone else's", registry=registry)
    with caplog.at_level(logging.WARNING, logger="httpx_resilience.store"):
        client = StoreClient("http://store", "k", metrics_registry=registry, settings=Settings())
    assert client.gauge is None and "already registered" in caplog.text
    shared = CircuitBreaker(5, 30.0)
    reg2 = CollectorRegistry()
    a = StoreClient("http://store", "k", metrics_registry=reg2, circuit_breaker=shared, settings=Settings())
    b = StoreClient("http://store", "k", metrics_registry=reg2, circuit_breaker=shared, settings=Settings())
    assert a.gauge is b.gauge is not None


def test_store_needs_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing URL or key names STORE_API_URL / STORE_API_KEY; the environment supplies both."""
    with pytest.raises(ConfigurationError, match="STORE_API_URL"):
        StoreClient(api_key="k", settings=Settings())
    with pytest.raises(ConfigurationError, match="STORE_API_KEY"):
        StoreClient("http://store", settings=Settings())
    monkeypatch.setenv("STORE_API_URL", "http://store.internal")
    monkeypatch.setenv("STORE_API_KEY", "env-key")
    client = StoreClient(metrics=False, settings=Settings())
    assert client.base_url == "http://store.internal" and client.service_name == "store-api"


def test_trim_results_accepts_lists_and_envelopes() -> None:
    """trim_results handles a bare list, an envelope with 'results'/'count', and junk."""
    assert trim_results([{"id": 1, "images": []}]) == {"items": [{"id": 1}], "total": 1, "shown": 1}
    assert trim_results({"results": [1, 2], "count": 40}) == {"items": [1, 2], "total": 40, "shown": 2}
    assert trim_results("nothing") == {"items": [], "total": 0, "shown": 0}
    assert trim_results({"message": "no tyres"}) == {"items": [], "total": 0, "shown": 0}
