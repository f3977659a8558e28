"""respx and pytest-httpx intercept requests whatever inner transport is in use.

Both libraries patch httpx's own stack (respx: httpcore's connection pool;
pytest-httpx: ``httpx.AsyncHTTPTransport.handle_async_request``). While one
of them is active, ``NativeTransport`` and ``AiohttpTransport`` hand the
request to a plain ``httpx.AsyncHTTPTransport`` so the mock sees it exactly as
under plain httpx. The tests use respx the way its documentation shows —
``@respx.mock``, ``with respx.mock``, ``respx.get(...).respond(...)``,
``assert_all_called``, a ``side_effect`` — under ``AsyncHTTPClient`` with
each ``transport=`` setting and under ``httpx.AsyncClient(transport=ResilientTransport(...))``.
Every host is ``*.test``: a request the mock missed would fail to resolve.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from httpx_resilience import AsyncHTTPClient, ClientConfig, ResilientTransport, RetryPolicy
from httpx_resilience.testing.clock import FakeClock
from httpx_resilience.transports import AiohttpTransport, NativeTransport
from httpx_resilience.transports._mocks import patched

API = "https://api.test"
CLIENT_KINDS = ("auto", "native", "aiohttp", "httpx")
INNER = {
    "native": NativeTransport,
    "aiohttp": AiohttpTransport,
    "default": lambda: None,  # ResilientTransport's own default
}

Get = Callable[[str], Awaitable[int]]


def client_config(kind: str) -> ClientConfig:
    # retry_attempts counts retries: 3 attempts in all, as RetryPolicy(max_attempts=3) below.
    return ClientConfig(transport=kind, retry_attempts=2, retry_backoff_factor=0.01, retry_jitter="none")  # type: ignore[arg-type]


@pytest.fixture(params=[f"client-{k}" for k in CLIENT_KINDS] + [f"httpx-{k}" for k in INNER])
async def get(request: pytest.FixtureRequest) -> AsyncIterator[Get]:
    """GET a URL and return its status through one of the set-ups under test."""
    name: str = request.param
    clock = FakeClock()
    if name.startswith("client-"):
        async with AsyncHTTPClient(config=client_config(name.removeprefix("client-")), clock=clock) as client:

            async def through_client(url: str) -> int:
                return (await client.get(url)).status_code

            yield through_client
        return
    inner = INNER[name.removeprefix("httpx-")]()
    transport = ResilientTransport(inner, retry=RetryPolicy(max_attempts=3, backoff_factor=0.01), clock=clock)
    async with httpx.AsyncClient(transport=transport) as client:

        async def through_httpx(url: str) -> int:
            return (await client.get(url)).status_code

        yield through_httpx


def test_nothing_is_patched_outside_a_mock() -> None:
    assert not patched()


@respx.mock
async def test_decorator(get: Get) -> None:
    route = respx.get(f"{API}/items").respond(200, json=[1, 2])
    assert await get(f"{API}/items") == 200
    assert route.called and route.call_count == 1


async def test_context_manager_with_assert_all_called(get: Get) -> None:
    with respx.mock(assert_all_called=True) as mock:
        items = mock.get(f"{API}/items").respond(201)
        users = mock.get(f"{API}/users", params={"id": "7"}).respond(404)
        assert await get(f"{API}/items") == 201
        assert await get(f"{API}/users?id=7") == 404
    assert items.call_count == 1 and users.call_count == 1
    assert not patched()


async def test_assert_all_called_fails_when_a_route_was_not_used(get: Get) -> None:
    with pytest.raises(AssertionError), respx.mock(assert_all_called=True) as mock:
        mock.get(f"{API}/used").respond(200)
        mock.get(f"{API}/unused").respond(200)
        await get(f"{API}/used")


async def test_base_url_router(get: Get) -> None:
    async with respx.mock(base_url=API) as mock:
        route = mock.get("/v1/ping").respond(204)
        assert await get(f"{API}/v1/ping") == 204
    assert route.called


async def test_side_effect_connect_error_takes_the_retry_path(get: Get) -> None:
    """A route failing once with ConnectError is retried by the pipeline, then answers."""
    with respx.mock:
        route = respx.get(f"{API}/flaky").mock(
            side_effect=[httpx.ConnectError("connection refused"), httpx.Response(200)]
        )
        assert await get(f"{API}/flaky") == 200
    assert route.call_count == 2


async def test_side_effect_persistent_failure_is_retried_then_raised(get: Get) -> None:
    with respx.mock:
        route = respx.get(f"{API}/down").mock(side_effect=httpx.ConnectError("down"))
        with pytest.raises(httpx.ConnectError):
            await get(f"{API}/down")
    assert route.call_count == 3


async def test_unmatched_request_is_reported_by_respx(get: Get) -> None:
    """respx's assert_all_mocked reaches the caller: the request never went to the network."""
    with respx.mock, pytest.raises(Exception, match="not mocked"):
        await get(f"{API}/nobody")


async def test_response_body_and_headers_come_through() -> None:
    """What the route answers is what AsyncHTTPClient returns, over each inner transport."""
    for kind in ("native", "aiohttp"):
        async with AsyncHTTPClient(API, config=client_config(kind)) as client:
            with respx.mock:
                respx.post(f"{API}/echo").respond(200, json={"ok": True}, headers={"X-Mock": kind})
                response = await client.post("/echo", json={"a": 1})
            assert response.json_data == {"ok": True}
            assert response.headers["x-mock"] == kind


@pytest.mark.parametrize("transport_class", [NativeTransport, AiohttpTransport])
async def test_inner_transport_alone_is_intercepted(transport_class: type[httpx.AsyncBaseTransport]) -> None:
    """The inner transports hand over to the mock even without the pipeline around them."""
    transport = transport_class()
    try:
        with respx.mock:
            route = respx.put(f"{API}/raw").respond(202, content=b"raw")
            response = await transport.handle_async_request(
                httpx.Request("PUT", f"{API}/raw", content=b"body")
            )
            await response.aread()
        assert response.status_code == 202 and response.content == b"raw"
        assert route.calls.last.request.content == b"body"
    finally:
        await transport.aclose()


async def test_pytest_httpx_style_patching_is_detected(monkeypatch: pytest.MonkeyPatch, get: Get) -> None:
    """Patching httpx.AsyncHTTPTransport.handle_async_request (what pytest-httpx does) intercepts too."""
    seen: list[str] = []

    async def fake(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(418, request=request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", fake)
    assert patched()
    assert await get(f"{API}/teapot") == 418
    assert seen == [f"{API}/teapot"]


@pytest.mark.parametrize("transport_class", [NativeTransport, AiohttpTransport])
async def test_after_the_mock_the_real_transport_is_used_again(
    transport_class: type[httpx.AsyncBaseTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once respx stops, the transport sends for real: it resolves the name itself."""
    resolved: list[Any] = []

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        resolved.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no such name (test)")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    transport = transport_class()
    try:
        with respx.mock:
            respx.get(f"{API}/x").respond(200)
            first = await transport.handle_async_request(httpx.Request("GET", f"{API}/x"))
        assert first.status_code == 200 and resolved == []
        assert not patched()
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(
                httpx.Request("GET", f"{API}/x", extensions={"timeout": _timeouts(2.0)})
            )
        assert resolved and resolved[0] in ("api.test", b"api.test")
    finally:
        await transport.aclose()


def _timeouts(seconds: float) -> dict[str, Any]:
    return {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
