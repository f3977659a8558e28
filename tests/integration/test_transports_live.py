"""The inner transports over real sockets: httpx's own and AiohttpTransport must behave alike.

Every parametrized test runs against both ``"httpx"`` (``httpx.AsyncHTTPTransport``)
and ``"aiohttp"`` (:class:`~httpx_resilience.transports.AiohttpTransport`); the
expected outcome is what httpx's own transport does. The tests at the end
cover what only the aiohttp adapter has (configuration, error mapping, import hint).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib
import importlib.util
import json
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp  # the dev extra installs it (httpx-resilience[all])
import httpx
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from httpx_resilience import (
    ClientConfig,
    ConfigurationError,
    ResilientTransport,
    RetryExhaustedError,
    RetryPolicy,
)
from httpx_resilience.testing import ChaosServer
from httpx_resilience.transports import (
    AiohttpTransport,
    NativeTransport,
    default_transport,
    make_transport,
    native_available,
)
from httpx_resilience.transports import factory as factory_module
from httpx_resilience.transports.aiohttp import _options as aiohttp_options
from httpx_resilience.transports.aiohttp import _transport as aiohttp_module
from httpx_resilience.transports.aiohttp import map_exception

KINDS = ("httpx", "native", "aiohttp")
FAST = ClientConfig(timeout=2.0, retry_backoff_factor=0.01, retry_max_delay=0.05, retry_jitter="none")
NO_RETRY = RetryPolicy(max_attempts=1)
READ_02 = httpx.Timeout(5.0, read=0.2)

Make = Callable[..., httpx.AsyncBaseTransport]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport under test."""
    return str(request.param)


@pytest.fixture
async def make(kind: str) -> AsyncIterator[Make]:
    """Build inner transports of ``kind``; every one is closed after the test."""
    made: list[httpx.AsyncBaseTransport] = []

    def build(**kw: Any) -> httpx.AsyncBaseTransport:
        transport = make_transport(kind, **kw)  # type: ignore[arg-type]
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.aclose()


def limits(n: int | None) -> httpx.Limits:
    return httpx.Limits(max_connections=n, max_keepalive_connections=n)


async def send_and_read(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    """What httpx's client does with a transport: send, then read the body, then close."""
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def timeouts(read: float = 5.0, connect: float = 5.0, pool: float = 5.0) -> dict[str, Any]:
    return {"timeout": {"connect": connect, "read": read, "write": 5.0, "pool": pool}}


# -- a raw TCP server for faults ChaosServer does not make ------------------------------


class RawServer:
    """Answers every connection with ``handler`` (in the test's own event loop)."""

    def __init__(
        self,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        *,
        read_head: bool = True,
    ) -> None:
        self.handler = handler
        self.read_head = read_head
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.read_head:
                await reader.readuntil(b"\r\n\r\n")
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def replying(raw: bytes) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return handler


# == faults: what surfaces, bare and through ResilientTransport ============================

FAULTS = [
    ("reset=before_headers", httpx.ReadError),
    ("reset=after_headers", httpx.ReadError),
    ("truncate=1", httpx.RemoteProtocolError),
    ("hang=1", httpx.ReadTimeout),
    ("latency=2", httpx.ReadTimeout),
    ("drip=1&body_size=64", httpx.ReadTimeout),
]


@pytest.mark.parametrize(("fault", "expected"), FAULTS)
async def test_fault_through_bare_transport(
    make: Make, chaos_server: ChaosServer, fault: str, expected: type[Exception]
) -> None:
    """A bare inner transport raises httpx's own class for each ChaosServer fault, sent once."""
    transport = make()
    request = httpx.Request("GET", chaos_server.url_for(f"/f?{fault}"), extensions=timeouts(read=0.2))
    with pytest.raises(httpx.TransportError) as info:
        await send_and_read(transport, request)
    assert type(info.value) is expected
    assert chaos_server.count("/f") == 1


@pytest.mark.parametrize(("fault", "expected"), FAULTS)
async def test_fault_through_resilient_transport(
    make: Make, chaos_server: ChaosServer, fault: str, expected: type[Exception]
) -> None:
    """Under httpx.AsyncClient + ResilientTransport (no retries) the same class surfaces, for a cold and a kept-alive connection."""
    transport = ResilientTransport(make(), retry=NO_RETRY, config=FAST)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url, timeout=READ_02) as client:
        for path in ("/cold", "/warm"):
            if path == "/warm":
                assert (await client.get("/ok")).status_code == 200
            with pytest.raises(httpx.TransportError) as info:
                await client.get(f"{path}?{fault}")
            assert type(info.value) is expected
            assert chaos_server.count(path) == 1


@pytest.mark.parametrize(("fault", "expected"), FAULTS[:3])
async def test_persistent_fault_exhausts_retries_with_the_same_cause(
    make: Make, chaos_server: ChaosServer, fault: str, expected: type[Exception]
) -> None:
    """With retries on, a persistent fault ends in RetryExhaustedError whose last error is httpx's class."""
    transport = ResilientTransport(make(), retry=RetryPolicy.from_config(FAST), config=FAST, retry_budget=False)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url, timeout=READ_02) as client:
        with pytest.raises(RetryExhaustedError) as info:
            await client.get(f"/p?{fault}")
    assert type(info.value.last_error) is expected
    assert chaos_server.count("/p") == info.value.attempts == 4


async def test_malformed_json_is_a_normal_response(make: Make, chaos_server: ChaosServer) -> None:
    """A body that is not valid JSON is delivered as is: it is not a transport error."""
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        response = await client.get("/j?malformed_json=1")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_connection_refused_is_connect_error(make: Make) -> None:
    """Nothing listening: httpx.ConnectError, before anything is sent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(httpx.TransportError) as info:
        await send_and_read(make(), httpx.Request("GET", f"http://127.0.0.1:{port}/", extensions=timeouts()))
    assert type(info.value) is httpx.ConnectError


async def test_closed_without_response_is_remote_protocol_error(make: Make) -> None:
    """The server closes cleanly after reading the request: httpx.RemoteProtocolError."""

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    async with RawServer(close) as server:
        with pytest.raises(httpx.TransportError) as info:
            await send_and_read(make(), httpx.Request("GET", server.url, extensions=timeouts()))
    assert type(info.value) is httpx.RemoteProtocolError


async def test_malformed_status_line_is_remote_protocol_error(make: Make) -> None:
    """A response head that is not HTTP: httpx.RemoteProtocolError."""
    async with RawServer(replying(b"HTTP/1.1 abc Broken\r\n\r\n")) as server:
        with pytest.raises(httpx.TransportError) as info:
            await send_and_read(make(), httpx.Request("GET", server.url, extensions=timeouts()))
    assert type(info.value) is httpx.RemoteProtocolError


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "//127.0.0.1/x"])
async def test_unsupported_scheme(make: Make, url: str) -> None:
    """A URL that is not http(s): httpx.UnsupportedProtocol, nothing sent."""
    with pytest.raises(httpx.UnsupportedProtocol):
        await make().handle_async_request(httpx.Request("GET", url))


# == timeouts =============================================================================


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose listen backlog is full: a new connection attempt hangs in SYN."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fillers.append(c)
    yield port
    for c in fillers:
        c.close()
    server.close()


async def test_connect_timeout(make: Make, unaccepting_port: int) -> None:
    """The connect phase outliving timeout["connect"] raises httpx.ConnectTimeout."""
    request = httpx.Request("GET", f"http://127.0.0.1:{unaccepting_port}/", extensions=timeouts(connect=0.2))
    t0 = time.perf_counter()
    with pytest.raises(httpx.TransportError) as info:
        await send_and_read(make(), request)
    assert type(info.value) is httpx.ConnectTimeout
    assert time.perf_counter() - t0 < 2.0


async def test_read_timeout_waiting_for_headers(make: Make, chaos_server: ChaosServer) -> None:
    """No response head within timeout["read"]: httpx.ReadTimeout, after about that long."""
    t0 = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        await send_and_read(make(), httpx.Request("GET", chaos_server.url_for("/r?latency=1"), extensions=timeouts(read=0.15)))
    assert 0.1 < time.perf_counter() - t0 < 0.9


async def test_read_timeout_is_per_read_not_total(make: Make, chaos_server: ChaosServer) -> None:
    """A body dripping faster than the read timeout completes though the whole takes longer."""
    request = httpx.Request("GET", chaos_server.url_for("/d?drip=0.05&drip_chunk=8&body_size=64"), extensions=timeouts(read=0.3))
    response = await send_and_read(make(), request)
    assert len(response.content) == 64


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ({"connect": -1.0}, httpx.ConnectTimeout),
        ({"read": 0.0}, httpx.ReadTimeout),
        ({"read": -1.0}, httpx.ReadTimeout),
    ],
    ids=["connect-negative", "read-zero", "read-negative"],
)
async def test_zero_or_negative_timeout_times_out_at_once(
    make: Make, chaos_server: ChaosServer, phases: dict[str, float], expected: type[Exception]
) -> None:
    """A timeout of 0 or less means "at once", as httpx reads it (aiohttp alone reads it as none)."""
    request = httpx.Request("GET", chaos_server.url_for("/slow?latency=0.3"), extensions=timeouts(**phases))
    with pytest.raises(expected):
        await asyncio.wait_for(send_and_read(make(), request), 5)


async def test_pool_timeout(make: Make, chaos_server: ChaosServer) -> None:
    """max_connections=1 held by an open stream: the next request waits timeout["pool"], then httpx.PoolTimeout."""
    transport = make(limits=limits(1))
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url, timeout=httpx.Timeout(5.0, pool=0.2)) as client:
        async with client.stream("GET", "/hold?drip=0.2&body_size=64"):
            t0 = time.perf_counter()
            with pytest.raises(httpx.TransportError) as info:
                await client.get("/next")
            assert type(info.value) is httpx.PoolTimeout
            assert 0.15 < time.perf_counter() - t0 < 1.5
        assert (await client.get("/after")).status_code == 200
    assert chaos_server.count("/next") == 0


async def test_pool_wait_without_timeout_gets_the_freed_connection(make: Make, chaos_server: ChaosServer) -> None:
    """With no pool timeout a waiting request proceeds as soon as the connection is freed."""
    transport = make(limits=limits(1))
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url, timeout=httpx.Timeout(5.0, pool=None)) as client:
        first, second = await asyncio.gather(client.get("/a?latency=0.1"), client.get("/b"))
    assert first.status_code == second.status_code == 200
    assert chaos_server.connections_opened == 1


async def test_attempt_timeout_frees_the_connection(make: Make, chaos_server: ChaosServer) -> None:
    """ResilientTransport's attempt timeout ends a hung request; its pool slot is free again."""
    transport = ResilientTransport(make(limits=limits(1)), retry=NO_RETRY, timeout=0.2, config=FAST)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url, timeout=httpx.Timeout(5.0, pool=0.5)) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.get("/hang?hang=1")
        assert (await client.get("/ok")).status_code == 200


async def test_cancelled_request_frees_the_connection(make: Make, chaos_server: ChaosServer) -> None:
    """A request cancelled from outside (wait_for) gives its pool slot back."""
    async with httpx.AsyncClient(transport=make(limits=limits(1)), base_url=chaos_server.url, timeout=httpx.Timeout(5.0, pool=0.5)) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get("/hang?hang=1"), 0.2)
        with pytest.raises(TimeoutError):  # cancelled while reading a dripping body
            await asyncio.wait_for(client.get("/drip?drip=0.1&body_size=64"), 0.3)
        assert (await client.get("/ok")).status_code == 200


# == streaming ============================================================================


async def test_streaming_is_incremental(make: Make, chaos_server: ChaosServer) -> None:
    """A dripping body arrives chunk by chunk: the first chunk long before the last."""
    async with (
        httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client,
        client.stream("GET", "/s?drip=0.04&drip_chunk=16&body_size=128") as response,
    ):
        t0 = time.perf_counter()
        stamps = []
        chunks = []
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            stamps.append(time.perf_counter() - t0)
    assert len(chunks) >= 4
    assert len(b"".join(chunks)) == 128
    assert stamps[-1] - stamps[0] > 0.15


async def test_streaming_through_resilient_transport(make: Make, chaos_server: ChaosServer) -> None:
    """With extensions resilience.stream the body is not buffered by the pipeline: still incremental."""
    transport = ResilientTransport(make(), config=FAST)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        request = client.build_request("GET", "/rs?drip=0.04&drip_chunk=16&body_size=96", extensions={"resilience": {"stream": True}})
        response = await client.send(request, stream=True)
        chunks = [chunk async for chunk in response.aiter_raw()]
        await response.aclose()
    assert len(chunks) >= 3 and len(b"".join(chunks)) == 96


async def test_early_close_releases_the_connection(make: Make, chaos_server: ChaosServer) -> None:
    """Closing a stream after one chunk frees the only connection (it is closed, not reused)."""
    transport = make(limits=limits(1))
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url, timeout=httpx.Timeout(5.0, pool=0.5)) as client:
        async with client.stream("GET", "/big?drip=0.05&drip_chunk=100&body_size=5000") as response:
            async for _ in response.aiter_raw():
                break
        t0 = time.perf_counter()
        assert (await client.get("/after")).status_code == 200
        assert time.perf_counter() - t0 < 0.4
    assert chaos_server.connections_opened == 2


async def test_aiohttp_stream_close_is_idempotent() -> None:
    """Closing a streamed body twice gives its pool permit back exactly once."""
    async with ChaosServer() as server, AiohttpTransport(limits=limits(1)) as transport:
        response = await transport.handle_async_request(
            httpx.Request("GET", server.url_for("/s?drip=0.05&body_size=64"), extensions=timeouts())
        )
        assert transport._pool is not None and transport._pool.locked()
        await response.stream.aclose()  # type: ignore[attr-defined]
        await response.stream.aclose()  # type: ignore[attr-defined]
        assert transport._pool._value == 1


async def test_keep_alive_reuses_one_connection(make: Make, chaos_server: ChaosServer) -> None:
    """Sequential requests reuse a single kept-alive connection."""
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        for i in range(10):
            assert (await client.get(f"/k{i}")).status_code == 200
    assert chaos_server.connections_opened == 1


async def test_response_extensions_and_reason(make: Make, chaos_server: ChaosServer) -> None:
    """The response says HTTP/1.1 and carries the server's reason phrase."""
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        response = await client.get("/x?status=418")
    assert response.http_version == "HTTP/1.1"
    assert response.reason_phrase == "I'm a Teapot"
    assert response.extensions["http_version"] == b"HTTP/1.1"


async def test_http_10_response(make: Make) -> None:
    """An HTTP/1.0 answer with a custom reason is reported as such, body read to EOF."""
    async with RawServer(replying(b"HTTP/1.0 299 Fine Thanks\r\nX-A: 1\r\n\r\nhello")) as server:
        response = await send_and_read(make(), httpx.Request("GET", server.url, extensions=timeouts()))
    assert response.status_code == 299
    assert response.http_version == "HTTP/1.0"
    assert response.reason_phrase == "Fine Thanks"
    assert response.content == b"hello"
    assert response.headers["x-a"] == "1"


async def test_head_response_has_no_body(make: Make, chaos_server: ChaosServer) -> None:
    """HEAD gets the headers a GET would (Content-Length included) and no body."""
    response = await send_and_read(make(), httpx.Request("HEAD", chaos_server.url_for("/head?body_size=100"), extensions=timeouts()))
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "100"


async def test_chunked_response_is_dechunked(make: Make) -> None:
    """A chunked response arrives de-chunked, with its Transfer-Encoding header kept."""
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async with RawServer(replying(raw)) as server:
        response = await send_and_read(make(), httpx.Request("GET", server.url, extensions=timeouts()))
    assert response.content == b"hello world"
    assert response.headers["transfer-encoding"] == "chunked"


# == bodies ===============================================================================


async def test_large_response_body(make: Make, chaos_server: ChaosServer) -> None:
    """A 5 MB body arrives intact, through the client and through the buffering pipeline."""
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        plain = await client.get("/big?body_size=5000000")
    async with httpx.AsyncClient(transport=ResilientTransport(make(), config=FAST), base_url=chaos_server.url) as client:
        piped = await client.get("/big?body_size=5000000")
    assert len(plain.content) == len(piped.content) == 5_000_000
    assert plain.content == piped.content and plain.json()["data"].startswith("xxx")


async def test_large_request_body(make: Make, chaos_server: ChaosServer) -> None:
    """A 5 MB POST body arrives intact with its Content-Length."""
    payload = bytes(range(256)) * (5_000_000 // 256)
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        assert (await client.post("/up", content=payload)).status_code == 200
    seen = chaos_server.requests("/up")[0]
    assert seen.body == payload and seen.headers["content-length"] == str(len(payload))


async def test_gzip_decoded_once(make: Make, chaos_server: ChaosServer) -> None:
    """A gzip body is passed on raw with its Content-Encoding, so httpx decodes it exactly once."""
    data = json.dumps({"items": list(range(500))}).encode()
    packed = gzip.compress(data)
    chaos_server.route("/gz", body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        decoded = await client.get("/gz")
        async with client.stream("GET", "/gz") as response:
            raw = b"".join([c async for c in response.aiter_raw()])
    assert decoded.content == data and decoded.json()["items"][-1] == 499
    assert raw == packed
    assert decoded.headers["content-encoding"] == "gzip"
    assert chaos_server.requests("/gz")[0].headers["accept-encoding"] == httpx.AsyncClient().headers["accept-encoding"]


async def test_post_bytes_json_form(make: Make, chaos_server: ChaosServer) -> None:
    """Bytes, JSON and form bodies arrive byte for byte with httpx's Content-Type and Content-Length."""
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        await client.post("/bytes", content=b"\x00\x01raw")
        await client.post("/json", json={"a": [1, 2], "b": "é"})
        await client.post("/form", data={"x": "1 2", "y": "&"})
    raw, js, form = (chaos_server.requests(p)[0] for p in ("/bytes", "/json", "/form"))
    assert raw.body == b"\x00\x01raw" and "content-type" not in raw.headers
    assert js.json() == {"a": [1, 2], "b": "é"} and js.headers["content-type"] == "application/json"
    assert form.body == b"x=1+2&y=%26"
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert all(r.headers["content-length"] == str(len(r.body)) for r in (raw, js, form))


async def test_unread_byte_stream_body(make: Make, chaos_server: ChaosServer) -> None:
    """A request built with stream=httpx.ByteStream(...) (never read) is sent intact."""
    request = httpx.Request("PUT", chaos_server.url_for("/bs"), stream=httpx.ByteStream(b"abc"), headers={"Host": chaos_server.url.split("//")[1].rstrip("/"), "Content-Length": "3"}, extensions=timeouts())
    await send_and_read(make(), request)
    assert chaos_server.requests("/bs")[0].body == b"abc"


async def test_post_async_generator_is_chunked(make: Make, chaos_server: ChaosServer) -> None:
    """An async-generator body is sent chunked, once, and arrives intact."""

    async def gen() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"part{i};".encode()

    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        assert (await client.post("/gen", content=gen())).status_code == 200
    seen = chaos_server.requests("/gen")[0]
    assert seen.body == b"part0;part1;part2;part3;part4;"
    assert seen.headers.get_list("transfer-encoding") == ["chunked"]
    assert "content-length" not in seen.headers


async def test_post_multipart(make: Make, chaos_server: ChaosServer) -> None:
    """A multipart body (fields + file) arrives exactly as httpx rendered it, boundary included."""
    async with httpx.AsyncClient(transport=make(), base_url=chaos_server.url) as client:
        request = client.build_request("POST", "/mp", data={"name": "x"}, files={"f": ("a.bin", b"\x00\xff" * 1000, "application/octet-stream")})
        expected = b"".join(request.stream)  # type: ignore[union-attr]
        assert (await client.send(request)).status_code == 200
    seen = chaos_server.requests("/mp")[0]
    assert seen.body == expected
    assert seen.headers["content-type"] == request.headers["content-type"]
    assert seen.headers["content-length"] == str(len(expected))


async def test_request_body_error_propagates(make: Make, chaos_server: ChaosServer) -> None:
    """An exception raised by the caller's body iterator surfaces unchanged."""

    async def broken() -> AsyncIterator[bytes]:
        yield b"first"
        raise ValueError("body generator failed")

    with pytest.raises(ValueError, match="body generator failed"):
        await send_and_read(make(), httpx.Request("POST", chaos_server.url_for("/broken"), content=broken(), extensions=timeouts()))


async def test_wire_headers_are_exactly_the_requests(make: Make, chaos_server: ChaosServer) -> None:
    """A bare httpx.Request goes out with its own headers only: no User-Agent, Accept, Accept-Encoding or Content-Type added."""
    request = httpx.Request("POST", chaos_server.url_for("/h"), content=b"abc", headers={"X-Custom": "v", "x-dup": "1"})
    await send_and_read(make(), request)
    seen = chaos_server.requests("/h")[0]
    assert set(seen.headers) == {"host", "content-length", "x-custom", "x-dup"}
    assert seen.headers["x-custom"] == "v"


async def test_cookies_handled_by_httpx_only(make: Make, chaos_server: ChaosServer) -> None:
    """Set-Cookie is stored by httpx and sent once; the bare transport keeps no cookies."""
    chaos_server.route("/set", headers={"Set-Cookie": "sid=abc; Path=/"})
    transport = make()
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        await client.get("/set")
        await client.get("/echo")
    assert chaos_server.requests("/echo")[0].headers.get_list("cookie") == ["sid=abc"]
    await send_and_read(transport, httpx.Request("GET", chaos_server.url_for("/echo/bare"), extensions=timeouts()))
    assert "cookie" not in chaos_server.requests("/echo/bare")[0].headers


async def test_redirects_are_not_followed_by_the_transport(make: Make, chaos_server: ChaosServer) -> None:
    """A 302 is returned to httpx as is: following redirects is the client's decision."""
    chaos_server.route("/r", status=302, headers={"Location": "/target"})
    response = await send_and_read(make(), httpx.Request("GET", chaos_server.url_for("/r"), extensions=timeouts()))
    assert response.status_code == 302 and chaos_server.count("/target") == 0


# == pool limits and retries ==============================================================


async def test_connection_limit_under_concurrency(make: Make, chaos_server: ChaosServer) -> None:
    """20 concurrent requests with max_connections=3 never open more than 3 connections."""
    async with httpx.AsyncClient(transport=make(limits=limits(3)), base_url=chaos_server.url) as client:
        responses = await asyncio.gather(*(client.get(f"/c{i}?latency=0.05") for i in range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert chaos_server.connections_opened <= 3


async def test_retries_until_success(make: Make, chaos_server: ChaosServer) -> None:
    """503, 503, 200 through ResilientTransport: three attempts upstream, one request id."""
    transport = ResilientTransport(make(), config=FAST)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        response = await client.get("/s?status=503,503,200")
    assert response.status_code == 200
    assert response.extensions["resilience"].attempts == 3
    seen = chaos_server.requests("/s")
    assert len(seen) == 3 and len({s.headers["x-request-id"] for s in seen}) == 1


async def test_reset_retried_exactly_as_many_times_as_the_policy_says(make: Make, chaos_server: ChaosServer) -> None:
    """Two resets then 200: exactly three requests upstream (the transport never resends on its own)."""
    transport = ResilientTransport(make(), config=FAST)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        assert (await client.get("/ok")).status_code == 200  # a kept-alive connection exists
        response = await client.get("/z?reset=before_headers&times=2")
    assert response.status_code == 200
    assert chaos_server.count("/z") == 3
    assert response.extensions["resilience"].attempts == 3


async def test_post_not_resent_after_reset(make: Make, chaos_server: ChaosServer) -> None:
    """A POST reset after it was sent is not retried: the server sees it once."""
    transport = ResilientTransport(make(), config=FAST)
    async with httpx.AsyncClient(transport=transport, base_url=chaos_server.url) as client:
        with pytest.raises(httpx.ReadError):
            await client.post("/pay?reset=before_headers", json={"amount": 1})
    assert chaos_server.count("/pay") == 1


async def test_http_proxy(make: Make, chaos_server: ChaosServer) -> None:
    """An HTTP proxy gets the absolute-form request for the upstream host."""
    transport = make(proxy=chaos_server.url)
    response = await send_and_read(transport, httpx.Request("GET", "http://upstream.invalid/via-proxy?q=1", extensions=timeouts()))
    assert response.status_code == 200
    seen = chaos_server.requests("/via-proxy")[0]
    assert seen.query == "q=1" and seen.headers["host"] == "upstream.invalid"


# == TLS ==================================================================================


@pytest.fixture
async def tls_url(tls_files: tuple[Path, Path]) -> AsyncIterator[str]:
    """An HTTPS server on loopback answering 200 "secure"."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*tls_files)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    server.close()


async def test_tls_verify_default_rejects_unknown_ca(make: Make, tls_url: str) -> None:
    """verify=True refuses a self-signed certificate with httpx.ConnectError."""
    with pytest.raises(httpx.TransportError) as info:
        await send_and_read(make(verify=True), httpx.Request("GET", tls_url, extensions=timeouts()))
    assert type(info.value) is httpx.ConnectError


async def test_tls_verify_false_and_context(make: Make, tls_url: str, tls_files: tuple[Path, Path]) -> None:
    """verify=False, and an SSLContext trusting the certificate, both connect."""
    insecure = await send_and_read(make(verify=False), httpx.Request("GET", tls_url, extensions=timeouts()))
    ctx = ssl.create_default_context(cafile=str(tls_files[0]))
    trusted = await send_and_read(make(verify=ctx), httpx.Request("GET", tls_url, extensions=timeouts()))
    assert insecure.content == trusted.content == b"secure"


async def test_tls_to_plain_http_server_is_connect_error(make: Make) -> None:
    """A plain-HTTP answer to the TLS handshake fails it: httpx.ConnectError."""
    async with RawServer(replying(b"HTTP/1.1 400 Bad Request\r\n\r\n"), read_head=False) as server:
        url = server.url.replace("http://", "https://")
        with pytest.raises(httpx.TransportError) as info:
            await send_and_read(make(verify=False), httpx.Request("GET", url, extensions=timeouts()))
    assert type(info.value) is httpx.ConnectError


# == what only the aiohttp adapter has ====================================================


async def test_aiohttp_session_is_lazy_and_configured() -> None:
    """The session appears on first use, with no cookie jar, raw bodies and the pool limits."""
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=7, keepalive_expiry=3.0), max_connections_per_host=2)
    assert transport.session is None and "idle" in repr(transport)
    async with ChaosServer() as server:
        await send_and_read(transport, httpx.Request("GET", server.url, extensions=timeouts()))
        session = transport.session
        assert session is not None and "open" in repr(transport)
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)
        assert session.auto_decompress is False
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert (connector.limit, connector.limit_per_host) == (7, 2)
        await transport.aclose()
        assert transport.session is None and session.closed
        await transport.aclose()  # idempotent
        # Usable again after aclose, like httpx's transport: a new session.
        await send_and_read(transport, httpx.Request("GET", server.url, extensions=timeouts()))
        assert transport.session is not None and transport.session is not session
        await transport.aclose()


async def test_aiohttp_no_keepalive_closes_every_connection() -> None:
    """max_keepalive_connections=0 closes each connection after its response."""
    transport = AiohttpTransport(limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))
    async with ChaosServer() as server:
        for _ in range(3):
            await send_and_read(transport, httpx.Request("GET", server.url, extensions=timeouts()))
        assert server.connections_opened == 3
        assert transport.session is not None and transport.session.connector is not None
        assert transport.session.connector.force_close
    await transport.aclose()


async def test_aiohttp_without_timeouts_extension() -> None:
    """A request without the timeout extension is sent with no timeouts at all."""
    async with ChaosServer() as server, AiohttpTransport() as transport:
        response = await send_and_read(transport, httpx.Request("GET", server.url_for("/nt?latency=0.05")))
    assert response.status_code == 200


async def test_aiohttp_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URL and timeout caches are cleared when full instead of growing."""
    monkeypatch.setattr(aiohttp_module, "_URL_CACHE_SIZE", 2)
    monkeypatch.setattr(aiohttp_module, "_TIMEOUT_CACHE_SIZE", 2)
    async with ChaosServer() as server, AiohttpTransport() as transport:
        for i in range(5):
            await send_and_read(transport, httpx.Request("GET", server.url_for(f"/u{i}"), extensions=timeouts(read=1 + i)))
        assert len(transport._urls) <= 2 and len(transport._timeouts) <= 2
        assert server.count() == 5


async def test_aiohttp_sync_iterator_body() -> None:
    """A synchronous iterator body is streamed too."""
    async with ChaosServer() as server, AiohttpTransport() as transport:
        request = httpx.Request("PUT", server.url_for("/sync"), content=iter([b"a", b"b"]), extensions=timeouts())
        await send_and_read(transport, request)
        assert server.requests("/sync")[0].body == b"ab"


async def test_aiohttp_non_utf8_header_is_sent() -> None:
    """A header value that is not UTF-8 is still sent (as Latin-1 text) rather than failing."""
    async with ChaosServer() as server, AiohttpTransport() as transport:
        request = httpx.Request("GET", server.url_for("/l1"), headers={"X-L": b"caf\xe9"}, extensions=timeouts())
        assert (await send_and_read(transport, request)).status_code == 200
        assert "x-l" in server.requests("/l1")[0].headers


def test_aiohttp_transport_is_bound_to_one_loop() -> None:
    """Using one transport from a second event loop is refused with a clear error."""
    transport = AiohttpTransport()
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        with ChaosServer() as server:
            first.run_until_complete(send_and_read(transport, httpx.Request("GET", server.url, extensions=timeouts())))
            with pytest.raises(RuntimeError, match="event loop"):
                second.run_until_complete(transport.handle_async_request(httpx.Request("GET", server.url)))
            first.run_until_complete(transport.aclose())
    finally:
        first.close()
        second.close()


def test_aiohttp_proxy_options() -> None:
    """httpx.Proxy auth and headers become aiohttp proxy headers; the URL loses its credentials."""
    transport = AiohttpTransport(proxy=httpx.Proxy("http://u:p%40ss@proxy.local:3128", headers={"X-P": "1"}))
    options = transport._request_options
    assert options["proxy"] == "http://proxy.local:3128"
    assert options["proxy_headers"] == {"X-P": "1", "Proxy-Authorization": "Basic dTpwQHNz"}
    assert AiohttpTransport(proxy="http://proxy.local:3128")._request_options == {"proxy": "http://proxy.local:3128"}


def test_aiohttp_rejects_bad_configuration() -> None:
    """SOCKS proxies and a negative per-host limit are configuration errors naming the field."""
    with pytest.raises(ConfigurationError) as info:
        AiohttpTransport(proxy="socks5://proxy.local:1080")
    assert info.value.field == "proxy"
    with pytest.raises(ConfigurationError) as info:
        AiohttpTransport(max_connections_per_host=-1)
    assert info.value.field == "max_connections_per_host"


def test_aiohttp_ssl_option() -> None:
    """verify maps to aiohttp's ssl=: False, the given context, or httpx's default context."""
    ctx = ssl.create_default_context()
    assert aiohttp_options.ssl_option(False) is False
    assert aiohttp_options.ssl_option(ctx) is ctx
    assert isinstance(aiohttp_options.ssl_option(True), ssl.SSLContext)


def _request() -> httpx.Request:
    return httpx.Request("GET", "http://example.invalid/")


INFO = aiohttp.RequestInfo(yarl.URL("http://example.invalid/"), "GET", CIMultiDictProxy(CIMultiDict()))


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("t"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("t"), httpx.ReadTimeout),
        (aiohttp.ServerTimeoutError("t"), httpx.ReadTimeout),
        (aiohttp.ClientHttpProxyError(INFO, (), status=407), httpx.ProxyError),
        (aiohttp.ServerFingerprintMismatch(b"a", b"b", "h", 443), httpx.ConnectError),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.InvalidURL("bad"), httpx.UnsupportedProtocol),
        (aiohttp.ClientConnectionResetError("closing transport"), httpx.WriteError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientConnectionError("lost"), httpx.ReadError),
        (aiohttp.ClientPayloadError("not completed"), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("not completed. ConnectionResetError(104)"), httpx.ReadError),
        (aiohttp.ClientResponseError(INFO, (), status=400, message="bad head"), httpx.RemoteProtocolError),
        (aiohttp.ClientError("other"), httpx.TransportError),
    ],
)
def test_map_exception_table(raised: BaseException, expected: type[BaseException]) -> None:
    """Each aiohttp error maps to the httpx class httpx raises for the same fault, with the request attached."""
    request = _request()
    mapped = map_exception(raised, request)
    assert type(mapped) is expected
    assert isinstance(mapped, httpx.RequestError) and mapped.request is request


def test_map_exception_leaves_foreign_errors() -> None:
    """Non-aiohttp errors are not mapped; a body-iterator error wrapped by aiohttp is unwrapped."""
    assert map_exception(ValueError("x"), _request()) is None
    assert map_exception(asyncio.CancelledError(), _request()) is None
    cause = KeyError("body")
    wrapped = aiohttp.ClientConnectionError("Failed to send bytes")
    wrapped.__cause__ = cause
    assert map_exception(wrapped, _request()) is cause


def test_map_payload_error_uses_the_connection_error() -> None:
    """A payload error on a connection that saw an OS error is a reset (httpx.ReadError)."""
    protocol = SimpleNamespace(exception=lambda: ConnectionResetError(104, "reset"))
    response: Any = SimpleNamespace(connection=SimpleNamespace(protocol=protocol))
    assert type(map_exception(aiohttp.ClientPayloadError("x"), _request(), response)) is httpx.ReadError
    response = SimpleNamespace(connection=None)
    assert type(map_exception(aiohttp.ClientPayloadError("x"), _request(), response)) is httpx.RemoteProtocolError


def test_import_without_aiohttp_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without aiohttp, importing the adapter fails with the pip extra to install."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "httpx_resilience.transports.aiohttp")
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[aiohttp\]'"):
        importlib.import_module("httpx_resilience.transports.aiohttp")


def test_import_without_httptools_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without httptools, importing NativeTransport fails with the pip extra to install."""
    monkeypatch.setitem(sys.modules, "httptools", None)
    monkeypatch.delitem(sys.modules, "httpx_resilience.transports.native")
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[fast\]'"):
        importlib.import_module("httpx_resilience.transports.native")


def test_transports_package_lazy_attributes() -> None:
    """The package exposes AiohttpTransport lazily and lists its public names."""
    import httpx_resilience.transports as pkg

    assert pkg.AiohttpTransport is AiohttpTransport
    assert "AiohttpTransport" in dir(pkg) and "make_transport" in pkg.__all__
    with pytest.raises(AttributeError):
        pkg.NoSuchThing  # noqa: B018


# == the factory ==========================================================================


async def test_make_transport_kinds() -> None:
    """Each kind builds what it says; "auto" prefers native, then aiohttp, unless HTTP/2 or SOCKS is asked for."""
    built = [
        make_transport("httpx"),
        make_transport("native", verify=False, limits=limits(4)),
        make_transport("aiohttp", verify=False, limits=limits(5)),
        make_transport("auto"),
        make_transport("auto", http2=True),
    ]
    assert type(built[0]) is httpx.AsyncHTTPTransport
    assert isinstance(built[1], NativeTransport) and built[1].limits.max_connections == 4
    assert isinstance(built[2], AiohttpTransport) and built[2].limits.max_connections == 5
    assert isinstance(built[3], NativeTransport) is native_available()
    assert type(built[4]) is httpx.AsyncHTTPTransport
    for transport in built:
        await transport.aclose()
    # SOCKS goes to httpx's transport (which asks for httpx[socks] when socksio is missing).
    if importlib.util.find_spec("socksio") is None:
        with pytest.raises(ImportError, match="socks"):
            make_transport("auto", proxy="socks5://127.0.0.1:1080")
    else:  # pragma: no cover - depends on what is installed
        assert type(make_transport("auto", proxy="socks5://127.0.0.1:1080")) is httpx.AsyncHTTPTransport


@pytest.mark.parametrize("kind", ["native", "aiohttp"])
def test_make_transport_errors(kind: str) -> None:
    """An unknown kind and HTTP/2 over an HTTP/1.1-only transport are configuration errors naming the field."""
    with pytest.raises(ConfigurationError) as info:
        make_transport("curl")  # type: ignore[arg-type]
    assert info.value.field == "transport"
    with pytest.raises(ConfigurationError) as info:
        make_transport(kind, http2=True)  # type: ignore[arg-type]
    assert info.value.field == "http2"


def test_auto_falls_back_to_aiohttp_then_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """"auto" without httptools builds the aiohttp transport; without either, httpx's."""
    monkeypatch.setattr(factory_module, "native_available", lambda: False)
    assert isinstance(make_transport("auto"), AiohttpTransport)
    monkeypatch.setattr(factory_module, "aiohttp_available", lambda: False)
    assert type(make_transport("auto")) is httpx.AsyncHTTPTransport


def test_default_transport_follows_config() -> None:
    """default_transport takes pool limits and the kind from the config ("auto": native when installed)."""
    assert isinstance(default_transport(), NativeTransport)
    assert type(default_transport(ClientConfig(transport="httpx"))) is httpx.AsyncHTTPTransport
    cfg = ClientConfig(max_connections=9, max_keepalive_connections=4, keepalive_expiry=2.0)
    chosen = default_transport(cfg, kind="aiohttp")
    assert isinstance(chosen, AiohttpTransport)
    assert chosen.limits == httpx.Limits(max_connections=9, max_keepalive_connections=4, keepalive_expiry=2.0)
    flagged: Any = SimpleNamespace(
        transport="aiohttp", verify_ssl=True, http2=False, max_connections=3,
        max_keepalive_connections=3, keepalive_expiry=1.0,
    )
    assert isinstance(default_transport(flagged), AiohttpTransport)
