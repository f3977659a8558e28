"""NativeTransport under respx: a mocked httpx stack intercepts its requests, and no socket opens."""

from __future__ import annotations

import socket

import httpx
import pytest
import respx
from respx.models import AllMockedAssertionError

from httpx_resilience import ResilientTransport
from httpx_resilience.transports import NativeTransport


async def test_respx_mock_answers_and_no_socket_opens() -> None:
    """With respx.mock active, NativeTransport's requests get the mocked response; its pool never opens."""
    transport = NativeTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        with respx.mock(assert_all_called=True) as mock:
            route = mock.get("http://example.test/x").respond(200, json={"mocked": True})
            response = await client.get("http://example.test/x")
        assert response.json() == {"mocked": True}
        assert route.call_count == 1
        assert transport.pool is None  # no connection pool, so no socket, was ever made


async def test_respx_mock_under_the_resilient_pipeline() -> None:
    """The same through ResilientTransport(NativeTransport()): the mock sees the request once."""
    transport = NativeTransport()
    async with httpx.AsyncClient(transport=ResilientTransport(transport)) as client:
        with respx.mock:
            route = respx.post("https://api.example.test/items").respond(201, json={"id": 7})
            response = await client.post("https://api.example.test/items", json={"name": "x"})
    assert response.status_code == 201 and response.json() == {"id": 7}
    assert route.call_count == 1
    assert transport.pool is None


async def test_unmatched_route_is_respx_error_not_a_network_call() -> None:
    """A request no route matches fails as respx says (it is not sent to the network)."""
    transport = NativeTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        with respx.mock(assert_all_called=False):
            respx.get("http://example.test/known").respond(204)
            with pytest.raises(AllMockedAssertionError):
                await client.get("http://example.test/unknown")
    assert transport.pool is None


async def test_after_the_mock_the_transport_is_itself_again() -> None:
    """Once respx.mock exits, requests go through NativeTransport's own pool (here: a closed port)."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    transport = NativeTransport()
    try:
        with respx.mock:
            respx.get(url).respond(200)
            assert (
                await transport.handle_async_request(httpx.Request("GET", url))
            ).status_code == 200
        assert transport.pool is None
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(httpx.Request("GET", url))
        assert transport.pool is not None
    finally:
        await transport.aclose()
