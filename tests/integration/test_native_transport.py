"""What only NativeTransport has, over real loopback sockets: its pool, its HTTP/1.1 edge cases, its proxies.

The shared behaviour (faults, timeouts, bodies, TLS) is proved for every
transport by ``test_transports_live.py``; here the servers are asyncio servers
in the test's own event loop (:class:`Wire`), so a test controls exactly what
bytes go out and when, and counts connections at the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from httpx_resilience import ConfigurationError
from httpx_resilience.testing import ChaosServer
from httpx_resilience.transports import NativeTransport
from httpx_resilience.transports.native._pool import ConnectionPool

WAIT = 5.0  # upper bound for anything a test waits on: a hang fails the test instead


def timeouts(read: float = 5.0, connect: float = 5.0, pool: float = 5.0, write: float = 5.0) -> dict[str, Any]:
    return {"timeout": {"connect": connect, "read": read, "write": write, "pool": pool}}


def ok(body: bytes = b"ok", *extra: bytes) -> bytes:
    """A kept-alive 200 response with ``body`` (and extra raw header lines)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body) + b"".join(x + b"\r\n" for x in extra)
    return head + b"\r\n" + body


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait (polling the loop) until ``condition()`` holds; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def settle() -> None:
    """Let every ready task run up to its next wait."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- a scriptable loopback server ---------------------------------------------------------


@dataclass
class Seen:
    """One request as the server read it off the wire."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes  # de-chunked
    raw_body: bytes  # as framed on the wire

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


async def read_request(reader: asyncio.StreamReader) -> Seen | None:
    """Read one request (head, then a Content-Length or chunked body); ``None`` at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [(k, v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
    seen = Seen(method, target, headers, b"", b"")
    if (length := seen.header("content-length")) is not None:
        seen.body = seen.raw_body = await reader.readexactly(int(length))
    elif (seen.header("transfer-encoding") or "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip(), 16)
            data = await reader.readexactly(size + 2)
            seen.raw_body += size_line + data
            if size == 0:
                break
            seen.body += data[:-2]
    return seen


@dataclass
class Peer:
    """One connection the server accepted."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def request(self) -> Seen | None:
        return await read_request(self.reader)

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    @property
    def transport(self) -> asyncio.Transport:
        return cast(asyncio.Transport, self.writer.transport)

    def reset(self) -> None:
        """Close with RST (SO_LINGER 0) instead of FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def until_client_closes(self) -> None:
        """Read (discarding) until the client closes its side."""
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(65536):
                pass
        self.client_closed.set()


Handler = Callable[["Wire", Peer], Awaitable[None]]


def keep_alive(respond: Callable[[Seen], bytes] = lambda seen: ok()) -> Handler:
    """A handler answering every request on the connection with ``respond(seen)``, until EOF."""

    async def handler(wire: Wire, peer: Peer) -> None:
        while (seen := await peer.request()) is not None:
            wire.seen.append(seen)
            await peer.send(respond(seen))
        peer.client_closed.set()

    return handler


class Wire:
    """An asyncio server in the test's loop: every connection goes to ``handler``; it counts them."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.host = host
        self.ssl_context = ssl_context
        self.peers: list[Peer] = []
        self.seen: list[Seen] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(len(self.peers), reader, writer)
        self.peers.append(peer)
        try:
            await self.handler(self, peer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass  # the client went away, or the test is over (__aexit__ cancels)
        finally:
            writer.close()
            self._tasks.discard(task)

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for peer in self.peers:
            peer.writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), WAIT)

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    def request(self, path: str = "/", method: str = "GET", **kw: Any) -> httpx.Request:
        kw.setdefault("extensions", timeouts())
        return httpx.Request(method, self.origin + path, **kw)


@pytest.fixture
async def native() -> AsyncIterator[Callable[..., NativeTransport]]:
    """Build NativeTransports; every one is closed after the test."""
    made: list[NativeTransport] = []

    def build(**kw: Any) -> NativeTransport:
        transport = NativeTransport(**kw)
        made.append(transport)
        return transport

    yield build
    for transport in made:
        await transport.aclose()


async def fetch(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    """Send, read the whole body, close: what httpx's client does."""
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def pool_of(transport: NativeTransport) -> ConnectionPool:
    pool = transport.pool
    assert pool is not None
    return pool


def limits(n: int | None, keepalive: int | None = None, expiry: float | None = 5.0) -> httpx.Limits:
    return httpx.Limits(
        max_connections=n, max_keepalive_connections=n if keepalive is None else keepalive, keepalive_expiry=expiry
    )


class Gate:
    """A handler that answers ``/hold`` with half a body and the rest when :meth:`open` is called."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def open(self) -> None:
        self.event.set()

    async def __call__(self, wire: Wire, peer: Peer) -> None:
        while (seen := await peer.request()) is not None:
            wire.seen.append(seen)
            if seen.target.startswith("/hold"):
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
                await self.event.wait()
                await peer.send(b"56789")
            else:
                await peer.send(ok(seen.target.encode()))
        peer.client_closed.set()


# == the pool ================================================================================


async def test_max_connections_caps_concurrent_requests(native: Callable[..., NativeTransport]) -> None:
    """12 concurrent requests with max_connections=3 open exactly 3 connections at the server, all answered."""
    in_flight = 0
    peak = 0

    async def slow(wire: Wire, peer: Peer) -> None:
        nonlocal in_flight, peak
        while (seen := await peer.request()) is not None:
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            await peer.send(ok(seen.target.encode()))

    transport = native(limits=limits(3))
    async with Wire(slow) as wire:
        tasks = [asyncio.create_task(fetch(transport, wire.request(f"/{i}"))) for i in range(12)]
        await settle()
        assert pool_of(transport).open_connections == 3
        responses = await asyncio.gather(*tasks)
        assert [r.content for r in responses] == [f"/{i}".encode() for i in range(12)]
        assert wire.connections == 3 and peak == 3
        assert pool_of(transport).open_connections == pool_of(transport).idle_connections == 3


async def test_waiters_are_served_first_in_first_out_on_the_freed_connection(native: Callable[..., NativeTransport]) -> None:
    """With max_connections=1, waiters get the freed kept-alive connection in arrival order: one connection in all."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        waiters = []
        for name in ("/a", "/b", "/c"):
            waiters.append(asyncio.create_task(fetch(transport, wire.request(name))))
            await settle()  # each one queued before the next arrives
        assert [s.target for s in wire.seen] == ["/hold"]
        gate.open()
        assert await held.aread() == b"0123456789"
        await held.aclose()
        responses = await asyncio.gather(*waiters)
        assert [r.content for r in responses] == [b"/a", b"/b", b"/c"]
        assert [s.target for s in wire.seen] == ["/hold", "/a", "/b", "/c"]
        assert wire.connections == 1
        assert pool_of(transport).idle_connections == 1


async def test_waiter_for_another_origin_gets_the_slot(native: Callable[..., NativeTransport]) -> None:
    """A freed connection to origin A is closed so that the waiter for origin B opens its own."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as a, Wire(keep_alive()) as b:
        held = await transport.handle_async_request(a.request("/hold"))
        waiter = asyncio.create_task(fetch(transport, b.request("/b")))
        await settle()
        assert b.connections == 0
        gate.open()
        await held.aread()
        await held.aclose()
        assert (await waiter).status_code == 200
        await asyncio.wait_for(a.peers[0].client_closed.wait(), WAIT)  # A's connection was closed
        assert b.connections == 1
        pool = pool_of(transport)
        assert pool.open_connections == pool.idle_connections == 1


async def test_pool_timeout(native: Callable[..., NativeTransport]) -> None:
    """The only connection held: the next request waits the pool timeout, raises PoolTimeout, and leaks nothing."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        with pytest.raises(httpx.PoolTimeout, match="max_connections=1"):
            await transport.handle_async_request(wire.request("/next", extensions=timeouts(pool=0.05)))
        gate.open()
        await held.aread()
        await held.aclose()
        assert (await fetch(transport, wire.request("/after"))).content == b"/after"
        assert [s.target for s in wire.seen] == ["/hold", "/after"]
        assert wire.connections == 1


async def test_full_pool_evicts_the_oldest_idle_connection_of_another_origin(native: Callable[..., NativeTransport]) -> None:
    """max_connections=2 full of idle connections to A (older) and B: a request to C closes A's, keeps B's."""
    transport = native(limits=limits(2))
    async with Wire(keep_alive()) as a, Wire(keep_alive()) as b, Wire(keep_alive()) as c:
        await fetch(transport, a.request())
        await fetch(transport, b.request())
        assert pool_of(transport).idle_connections == 2
        await fetch(transport, c.request())
        await asyncio.wait_for(a.peers[0].client_closed.wait(), WAIT)
        assert not b.peers[0].client_closed.is_set()
        await fetch(transport, b.request())  # still pooled: no new connection
        assert b.connections == 1 and c.connections == 1
        assert pool_of(transport).open_connections == 2


async def test_no_keepalive_closes_every_connection(native: Callable[..., NativeTransport]) -> None:
    """max_keepalive_connections=0 closes each connection after its response (so does keepalive_expiry=0)."""
    async with Wire(keep_alive()) as wire:
        for transport in (native(limits=limits(None, keepalive=0)), native(limits=limits(None, expiry=0))):
            for _ in range(3):
                assert (await fetch(transport, wire.request())).status_code == 200
                pool = pool_of(transport)
                assert pool.open_connections == pool.idle_connections == 0
        assert wire.connections == 6
        for peer in wire.peers:
            await asyncio.wait_for(peer.client_closed.wait(), WAIT)


async def test_max_keepalive_keeps_at_most_n_idle(native: Callable[..., NativeTransport]) -> None:
    """Four concurrent responses with max_keepalive_connections=2: two connections stay idle, two are closed."""
    release = asyncio.Event()

    async def together(wire: Wire, peer: Peer) -> None:
        while await peer.request() is not None:
            await release.wait()
            await peer.send(ok())
        peer.client_closed.set()

    transport = native(limits=limits(4, keepalive=2))
    async with Wire(together) as wire:
        tasks = [asyncio.create_task(fetch(transport, wire.request())) for _ in range(4)]
        await eventually(lambda: wire.connections == 4)
        release.set()
        await asyncio.gather(*tasks)
        pool = pool_of(transport)
        assert pool.idle_connections == pool.open_connections == 2
        await eventually(lambda: sum(p.client_closed.is_set() for p in wire.peers) == 2)


async def test_keepalive_expiry(native: Callable[..., NativeTransport]) -> None:
    """A connection idle longer than keepalive_expiry is closed and replaced; one idle less is reused."""
    transport = native(limits=limits(None, expiry=0.05))
    async with Wire(keep_alive()) as wire:
        await fetch(transport, wire.request())
        await fetch(transport, wire.request())
        assert wire.connections == 1
        await asyncio.sleep(0.1)
        await fetch(transport, wire.request())
        assert wire.connections == 2
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)
        assert pool_of(transport).open_connections == 1


async def test_expired_idle_connections_are_retired_when_another_is_released(native: Callable[..., NativeTransport]) -> None:
    """Releasing a connection closes the idle ones past keepalive_expiry at once, not when they are next reached."""
    transport = native(limits=limits(None, expiry=0.05))
    async with Wire(keep_alive()) as wire:
        await asyncio.gather(fetch(transport, wire.request("/a")), fetch(transport, wire.request("/b")))
        assert pool_of(transport).idle_connections == 2
        await asyncio.sleep(0.1)
        # Both are expired; the request takes (and retires) one, opens a third, releases it:
        # the other expired one at the bottom of the stack is closed on that release.
        await fetch(transport, wire.request("/c"))
        assert pool_of(transport).idle_connections == 1 and pool_of(transport).open_connections == 1
        await asyncio.wait_for(asyncio.gather(*(p.client_closed.wait() for p in wire.peers[:2])), WAIT)


async def test_handed_over_connection_closed_before_the_waiter_runs_is_replaced(
    native: Callable[..., NativeTransport],
) -> None:
    """A waiter handed a kept-alive connection that closes before it runs opens a fresh one in its slot: no error."""
    transport = native(limits=limits(1))
    async with Wire(keep_alive()) as wire:
        await fetch(transport, wire.request("/warm"))
        pool = pool_of(transport)
        conn = pool._idle[next(iter(pool._idle))][-1]
        first = await pool.acquire(conn.origin, {}, wire.request())
        waiter = asyncio.create_task(pool.acquire(conn.origin, {}, wire.request()))
        await settle()
        pool.release(first, True)  # handed to the waiter ...
        first.close()  # ... and closed before the waiter runs
        second = await asyncio.wait_for(waiter, WAIT)
        assert second is not first and not second.closed
        assert pool.open_connections == 1 and wire.connections == 2
        pool.release(second, True)


async def test_connection_closed_by_server_while_idle_leaves_the_pool(native: Callable[..., NativeTransport]) -> None:
    """The server closes a kept-alive connection: it leaves the pool at once and the next request opens a new one."""

    async def once(wire: Wire, peer: Peer) -> None:
        await peer.request()
        await peer.send(ok())  # says keep-alive, then closes

    transport = native()
    async with Wire(once) as wire:
        await fetch(transport, wire.request())
        await eventually(lambda: pool_of(transport).idle_connections == 0)
        assert pool_of(transport).open_connections == 0
        assert (await fetch(transport, wire.request())).status_code == 200
        assert wire.connections == 2


async def test_aclose_closes_everything_and_a_later_request_works(native: Callable[..., NativeTransport]) -> None:
    """aclose() closes idle connections, fails waiters with RuntimeError, is idempotent; the next request opens a new pool."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        waiter = asyncio.create_task(fetch(transport, wire.request("/w")))
        await settle()
        first = transport.pool
        await transport.aclose()
        await transport.aclose()
        assert transport.pool is None
        with pytest.raises(RuntimeError, match="closed while waiting"):
            await waiter
        with pytest.raises(httpx.TransportError):
            await held.aread()  # its connection was closed under it
        await held.aclose()
        gate.open()
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)
        assert (await fetch(transport, wire.request("/again"))).content == b"/again"
        assert transport.pool is not None and transport.pool is not first
        assert wire.connections == 2


async def test_cancelled_waiter_leaks_no_slot(native: Callable[..., NativeTransport]) -> None:
    """A request cancelled while waiting for a connection leaves the queue; the freed connection serves the next one."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        waiter = asyncio.create_task(fetch(transport, wire.request("/cancelled")))
        await settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.open()
        await held.aread()
        await held.aclose()
        pool = pool_of(transport)
        assert pool.open_connections == pool.idle_connections == 1
        assert (await fetch(transport, wire.request("/next"))).content == b"/next"
        assert [s.target for s in wire.seen] == ["/hold", "/next"] and wire.connections == 1


async def test_connection_freed_before_a_cancelled_waiter_ran_is_not_given_to_it(native: Callable[..., NativeTransport]) -> None:
    """A waiter cancelled but still queued when the slot frees is skipped: the slot is released, not lost."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        waiter = asyncio.create_task(fetch(transport, wire.request("/cancelled")))
        await settle()
        waiter.cancel()
        await held.aclose()  # unread, so the connection closes; this runs before the waiter does
        assert pool_of(transport).open_connections == 0
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.open()
        assert (await fetch(transport, wire.request("/next"))).content == b"/next"
        assert [s.target for s in wire.seen] == ["/hold", "/next"]


@pytest.mark.parametrize("reusable", [True, False])
async def test_waiter_cancelled_as_it_is_handed_a_connection_passes_it_on(
    native: Callable[..., NativeTransport], reusable: bool
) -> None:
    """A waiter cancelled right after it was handed a connection (or a slot) gives it back: nothing leaks."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        waiter = asyncio.create_task(fetch(transport, wire.request("/w")))
        await settle()
        if reusable:
            gate.open()
            await held.aread()
        await held.aclose()  # hands the connection (or, closed, its slot) to the waiter...
        waiter.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        pool = pool_of(transport)
        assert pool.open_connections == pool.idle_connections == (1 if reusable else 0)
        assert (await fetch(transport, wire.request("/next"))).content == b"/next"
        assert wire.connections == (1 if reusable else 2)


async def test_connect_failure_hands_the_slot_to_a_waiter(native: Callable[..., NativeTransport]) -> None:
    """A connect that fails (a TLS handshake answered with garbage) passes its slot to the request waiting for one."""

    async def not_tls(wire: Wire, peer: Peer) -> None:
        await asyncio.sleep(0.02)  # long enough for the second request to queue
        await peer.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await peer.until_client_closes()

    transport = native(limits=limits(1), verify=False)
    async with Wire(not_tls) as bad, Wire(keep_alive()) as good:
        failing = asyncio.create_task(fetch(transport, httpx.Request("GET", f"https://127.0.0.1:{bad.port}/", extensions=timeouts())))
        await settle()
        waiting = asyncio.create_task(fetch(transport, good.request("/w")))
        await settle()
        assert good.connections == 0
        with pytest.raises(httpx.ConnectError):
            await failing
        assert (await waiting).content == b"ok"
        pool = pool_of(transport)
        assert pool.open_connections == pool.idle_connections == 1


async def test_unresolvable_host_is_connect_error(native: Callable[..., NativeTransport]) -> None:
    """A host name that does not resolve (.invalid, RFC 6761) raises ConnectError saying so."""
    request = httpx.Request("GET", "http://no-such-host.invalid/", extensions=timeouts(connect=3.0))
    with pytest.raises(httpx.ConnectError, match=r"Cannot resolve 'no-such-host\.invalid'"):
        await fetch(native(), request)


async def test_aclose_with_a_cancelled_waiter_still_queued(native: Callable[..., NativeTransport]) -> None:
    """aclose() right after a waiter was cancelled (before it ran) skips it; the waiter ends cancelled."""
    gate = Gate()
    transport = native(limits=limits(1))
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        waiter = asyncio.create_task(fetch(transport, wire.request("/w")))
        await settle()
        waiter.cancel()
        await transport.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await held.aclose()
        gate.open()


def test_second_event_loop_is_refused() -> None:
    """Using one NativeTransport from a second event loop raises RuntimeError; after aclose() it may move."""
    transport = NativeTransport()
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        with ChaosServer() as server:
            request = httpx.Request("GET", server.url, extensions=timeouts())
            first.run_until_complete(fetch(transport, request))
            with pytest.raises(RuntimeError, match="event loop"):
                second.run_until_complete(transport.handle_async_request(request))
            first.run_until_complete(transport.aclose())
            assert second.run_until_complete(fetch(transport, request)).status_code == 200
            second.run_until_complete(transport.aclose())
    finally:
        first.close()
        second.close()


# == the protocol ===========================================================================


async def test_response_split_into_one_byte_reads(native: Callable[..., NativeTransport]) -> None:
    """A response arriving one byte per read (status line, headers, chunked body) is parsed whole, then reused."""
    raw = (
        b"HTTP/1.1 418 I'm a teapot\r\nX-Long-Header-Name: a value, split\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    async def trickle(wire: Wire, peer: Peer) -> None:
        while (seen := await peer.request()) is not None:
            wire.seen.append(seen)
            for i in range(len(raw)):
                await peer.send(raw[i : i + 1])
                await asyncio.sleep(0)

    transport = native()
    async with Wire(trickle) as wire:
        for _ in range(2):
            response = await fetch(transport, wire.request())
            assert response.status_code == 418 and response.content == b"hello world"
            assert response.extensions["reason_phrase"] == b"I'm a teapot"
            assert response.headers["x-long-header-name"] == "a value, split"
        assert wire.connections == 1


async def test_head_with_content_length_then_reuse(native: Callable[..., NativeTransport]) -> None:
    """HEAD answered with Content-Length and no body completes; the next request reuses the connection."""

    def respond(seen: Seen) -> bytes:
        if seen.method == "HEAD":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        return ok(b"after head")

    transport = native()
    async with Wire(keep_alive(respond)) as wire:
        head = await fetch(transport, wire.request(method="HEAD"))
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "1000"
        assert (await fetch(transport, wire.request())).content == b"after head"
        assert wire.connections == 1


async def test_interim_responses_are_skipped(native: Callable[..., NativeTransport]) -> None:
    """100 Continue and 103 Early Hints (together or in separate packets) are skipped; the final answer is returned."""

    async def interim(wire: Wire, peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
        await asyncio.sleep(0.01)
        await peer.send(b"HTTP/1.1 201 Created\r\nX-Final: 1\r\nContent-Length: 4\r\n\r\ndone")
        await peer.request()
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"again"))

    transport = native()
    async with Wire(interim) as wire:
        response = await fetch(transport, wire.request())
        assert response.status_code == 201 and response.content == b"done"
        assert list(response.headers) == ["x-final", "content-length"]
        again = await fetch(transport, wire.request())
        assert again.status_code == 200 and again.content == b"again"
        assert wire.connections == 1


async def test_read_timeout_is_per_read_while_the_head_drips(native: Callable[..., NativeTransport]) -> None:
    """A head arriving in pieces 30 ms apart, 180 ms in all, beats a 100 ms read timeout: it bounds each wait, not the total."""
    head = b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 2\r\n\r\nok"

    async def drip(wire: Wire, peer: Peer) -> None:
        await peer.request()
        for i in range(0, len(head), 10):
            await peer.send(head[i : i + 10])
            await asyncio.sleep(0.03)
        await peer.until_client_closes()

    transport = native()
    async with Wire(drip) as wire:
        response = await fetch(transport, wire.request(extensions=timeouts(read=0.1)))
        assert response.content == b"ok" and response.headers["x-b"] == "2"


async def test_body_delimited_by_close(native: Callable[..., NativeTransport]) -> None:
    """A body with neither Content-Length nor chunked framing ends when the server closes; it is complete."""

    async def until_close(wire: Wire, peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\npart one, ")
        await asyncio.sleep(0.01)
        await peer.send(b"part two")

    transport = native()
    async with Wire(until_close) as wire:
        response = await fetch(transport, wire.request())
        assert response.content == b"part one, part two"
        assert pool_of(transport).open_connections == 0


async def test_http_10_response_is_not_reused(native: Callable[..., NativeTransport]) -> None:
    """An HTTP/1.0 answer (with Content-Length, the server keeping the socket open) is not reused."""
    transport = native()
    async with Wire(keep_alive(lambda seen: b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")) as wire:
        for _ in range(2):
            response = await fetch(transport, wire.request())
            assert response.http_version == "HTTP/1.0" and response.content == b"ok"
        assert wire.connections == 2
        assert pool_of(transport).open_connections == 0


async def test_connection_close_response_is_not_reused(native: Callable[..., NativeTransport]) -> None:
    """A response saying Connection: close is not reused even if the server keeps the socket open."""
    transport = native()
    async with Wire(keep_alive(lambda seen: ok(b"bye", b"Connection: close"))) as wire:
        await fetch(transport, wire.request())
        await fetch(transport, wire.request())
        assert wire.connections == 2
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)


async def test_unsolicited_bytes_on_an_idle_connection(native: Callable[..., NativeTransport]) -> None:
    """Bytes arriving on an idle connection (a 408 before closing) make it unusable: the next request opens a new one."""

    async def chatty(wire: Wire, peer: Peer) -> None:
        await peer.request()
        await peer.send(ok())
        await asyncio.sleep(0.01)
        await peer.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await peer.until_client_closes()

    transport = native()
    async with Wire(chatty) as wire:
        await fetch(transport, wire.request())
        await eventually(lambda: pool_of(transport).idle_connections == 0)
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)
        assert (await fetch(transport, wire.request())).status_code == 200
        assert wire.connections == 2


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_extra_message_in_the_same_packet_is_not_taken_for_the_answer(
    native: Callable[..., NativeTransport], method: str
) -> None:
    """A second response glued to the answer (same packet) neither replaces the answer nor leaves the connection pooled."""
    extra = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-First: 1\r\n\r\n" + (b"ok" if method == "GET" else b"")
    transport = native()
    async with Wire(keep_alive(lambda seen: first + extra)) as wire:
        response = await fetch(transport, wire.request(method=method))
        assert response.status_code == 200 and response.headers["x-first"] == "1"
        assert response.reason_phrase == "OK"
        assert response.content == (b"ok" if method == "GET" else b"")
        await eventually(lambda: pool_of(transport).open_connections == 0)
        await fetch(transport, wire.request(method=method))
        assert wire.connections == 2


async def test_large_body_read_slowly_then_reused(native: Callable[..., NativeTransport]) -> None:
    """An 8 MB body read slowly (reading pauses and resumes) arrives intact; the connection is reused afterwards."""
    size = 8 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    transport = native()
    async with Wire(keep_alive(lambda seen: ok(payload) if seen.target == "/big" else ok())) as wire:
        response = await transport.handle_async_request(wire.request("/big"))
        await asyncio.sleep(0.05)  # nobody reads: the buffer passes the high-water mark
        received = bytearray()
        chunks = 0
        async for chunk in response.aiter_bytes():
            received += chunk
            chunks += 1
            if chunks % 8 == 0:
                await asyncio.sleep(0.002)
        await response.aclose()
        assert len(received) == size and received == payload
        assert (await fetch(transport, wire.request("/small"))).content == b"ok"
        assert wire.connections == 1


async def test_early_close_of_a_stream_closes_the_connection(native: Callable[..., NativeTransport]) -> None:
    """Closing a streamed response before its end closes the connection (twice is harmless); the next request opens a new one."""
    gate = Gate()
    transport = native()
    async with Wire(gate) as wire:
        held = await transport.handle_async_request(wire.request("/hold"))
        async for chunk in held.aiter_raw():
            assert chunk == b"01234"
            break
        await held.aclose()
        await cast(httpx.AsyncByteStream, held.stream).aclose()
        assert pool_of(transport).open_connections == 0
        gate.open()
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)
        assert (await fetch(transport, wire.request("/next"))).content == b"/next"
        assert wire.connections == 2


@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-Evil", b"a\r\nX-Injected: 1")],
        [(b"X-Evil", b"a\nb")],
        [(b"X-Evil", b"a\rb")],
        [(b"X-Evil", b"a\x00b")],
        [(b"X-Evil\r\nX-Injected", b"1")],
    ],
)
async def test_header_injection_is_refused_before_sending(
    native: Callable[..., NativeTransport], headers: list[tuple[bytes, bytes]]
) -> None:
    """CR, LF or NUL in a header name or value: LocalProtocolError, and nothing reaches the server."""
    async with Wire(keep_alive()) as wire:
        for transport in (native(), native(proxy=wire.origin)):
            with pytest.raises(httpx.LocalProtocolError, match="CR, LF and NUL"):
                await transport.handle_async_request(wire.request("/x", headers=headers))
        await settle()
        assert wire.connections == 0


async def test_async_generator_bodies_framing(native: Callable[..., NativeTransport]) -> None:
    """An async-generator body goes out chunked without Content-Length, raw with it; empty parts are skipped."""

    async def parts() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b""
        yield b"world"

    transport = native()
    async with Wire(keep_alive()) as wire:
        await fetch(transport, wire.request("/chunked", "POST", content=parts()))
        await fetch(transport, wire.request("/raw", "POST", content=parts(), headers={"Content-Length": "11"}))
        chunked, raw = wire.seen
        assert chunked.header("transfer-encoding") == "chunked" and chunked.header("content-length") is None
        assert chunked.raw_body == b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
        assert raw.header("content-length") == "11" and raw.header("transfer-encoding") is None
        assert raw.raw_body == raw.body == b"hello world"
        assert wire.connections == 1


async def test_sync_iterator_body(native: Callable[..., NativeTransport]) -> None:
    """A synchronous iterator body is sent chunked and arrives intact."""
    transport = native()
    async with Wire(keep_alive()) as wire:
        await fetch(transport, wire.request("/sync", "PUT", content=iter([b"a", b"bc"])))
        assert wire.seen[0].body == b"abc" and wire.seen[0].header("transfer-encoding") == "chunked"


class NeverRead:
    """Accept and read nothing (the socket buffers fill up) until :meth:`drain` is called, then read to EOF."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def drain(self) -> None:
        self.event.set()

    async def __call__(self, wire: Wire, peer: Peer) -> None:
        peer.transport.pause_reading()
        await self.event.wait()
        peer.transport.resume_reading()
        await peer.until_client_closes()


@pytest.mark.parametrize("streamed", [False, True])
async def test_write_timeout(native: Callable[..., NativeTransport], streamed: bool) -> None:
    """A server that reads nothing: a 32 MB body (in memory or streamed) raises WriteTimeout after the write timeout."""
    block = b"x" * (1024 * 1024)

    async def blocks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield block

    content: Any = blocks() if streamed else block * 32
    transport = native()
    server = NeverRead()
    async with Wire(server) as wire:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(httpx.WriteTimeout, match=r"0\.1 s"):
            await transport.handle_async_request(wire.request("/up", "POST", content=content, extensions=timeouts(write=0.1)))
        assert loop.time() - t0 < 2.0
        assert pool_of(transport).open_connections == 0
        server.drain()  # the closed connection flushes what it buffered, then goes
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)


@pytest.mark.parametrize("streamed", [False, True])
async def test_request_body_waits_for_a_slow_reader(native: Callable[..., NativeTransport], streamed: bool) -> None:
    """A 32 MB body to a server that starts reading late: writing pauses, resumes, and the body arrives intact."""
    block = bytes(range(256)) * 4096  # 1 MB

    async def blocks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield block

    async def late_reader(wire: Wire, peer: Peer) -> None:
        peer.transport.pause_reading()
        await asyncio.sleep(0.05)
        peer.transport.resume_reading()
        await keep_alive()(wire, peer)

    transport = native()
    async with Wire(late_reader) as wire:
        if streamed:  # no timeout extension: the drain waits without a write timeout
            request = httpx.Request("POST", wire.origin + "/up", content=blocks(), headers={"Content-Length": str(32 * len(block))})
        else:
            request = wire.request("/up", "POST", content=block * 32)
        assert (await fetch(transport, request)).status_code == 200
        assert wire.seen[0].body == block * 32


async def test_early_answer_stops_a_streamed_body(native: Callable[..., NativeTransport]) -> None:
    """The server answers 413 and closes after the first chunk: the rest of the body is not sent and the 413 is returned."""
    sent: list[int] = []

    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            sent.append(i)
            yield b"part%d" % i
            await asyncio.sleep(0.05)

    async def refuse(wire: Wire, peer: Peer) -> None:
        await peer.reader.readuntil(b"\r\n\r\n")
        size = int(await peer.reader.readuntil(b"\r\n"), 16)
        await peer.reader.readexactly(size + 2)
        await peer.send(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    transport = native()
    async with Wire(refuse) as wire:
        response = await fetch(transport, wire.request("/up", "POST", content=parts()))
        assert response.status_code == 413
        assert sent == [0, 1]  # the second part was produced, but the closed connection stopped the loop
        assert pool_of(transport).open_connections == 0


async def test_server_reset_while_writing_is_read_error(native: Callable[..., NativeTransport]) -> None:
    """The server resets the connection while a large body is still being written: ReadError, as httpcore reports it."""

    async def reset_after_head(wire: Wire, peer: Peer) -> None:
        await peer.reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.05)
        peer.reset()

    transport = native()
    async with Wire(reset_after_head) as wire:
        with pytest.raises(httpx.ReadError):
            await transport.handle_async_request(wire.request("/up", "POST", content=b"x" * (32 * 1024 * 1024)))
        assert pool_of(transport).open_connections == 0


async def test_read_timeout_during_a_streamed_body(native: Callable[..., NativeTransport]) -> None:
    """The body stalls after its first part: ReadTimeout while streaming; the connection is not reused."""
    gate = Gate()
    transport = native()
    async with Wire(gate) as wire:
        response = await transport.handle_async_request(wire.request("/hold", extensions=timeouts(read=0.05)))
        with pytest.raises(httpx.ReadTimeout, match=r"0\.05 s"):
            async for _ in response.aiter_raw():
                pass
        await response.aclose()
        gate.open()
        assert (await fetch(transport, wire.request("/next"))).status_code == 200
        assert wire.connections == 2


async def test_reset_during_a_streamed_body_is_read_error(native: Callable[..., NativeTransport]) -> None:
    """A reset after part of the body: ReadError while streaming."""

    async def reset_mid_body(wire: Wire, peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await asyncio.sleep(0.02)
        peer.reset()

    transport = native()
    async with Wire(reset_mid_body) as wire:
        response = await transport.handle_async_request(wire.request())
        with pytest.raises(httpx.ReadError):
            await response.aread()
        await response.aclose()


@pytest.mark.parametrize(
    "parts",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"],
        [b"NOT HTTP AT ALL\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", b"ZZ\r\n"],
    ],
    ids=["bad-length", "not-http", "bad-chunk-after-a-good-one"],
)
async def test_malformed_response_is_remote_protocol_error(native: Callable[..., NativeTransport], parts: list[bytes]) -> None:
    """A malformed head, or a malformed chunk after part of the body, raises RemoteProtocolError."""

    async def broken(wire: Wire, peer: Peer) -> None:
        await peer.request()
        for part in parts:
            await peer.send(part)
            await asyncio.sleep(0.01)
        await peer.until_client_closes()

    transport = native()
    async with Wire(broken) as wire:
        with pytest.raises(httpx.RemoteProtocolError, match="Malformed"):
            await fetch(transport, wire.request())
        await asyncio.wait_for(wire.peers[0].client_closed.wait(), WAIT)
        assert pool_of(transport).open_connections == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
    ids=["with-upgrade-headers", "bare"],
)
async def test_upgrade_response_is_remote_protocol_error(native: Callable[..., NativeTransport], raw: bytes) -> None:
    """A 101 Switching Protocols answer raises RemoteProtocolError saying Upgrade is not supported."""
    transport = native()
    async with Wire(keep_alive(lambda seen: raw)) as wire:
        with pytest.raises(httpx.RemoteProtocolError, match="switched protocols"):
            await fetch(transport, wire.request())
        assert pool_of(transport).open_connections == 0


async def test_request_without_timeout_extension(native: Callable[..., NativeTransport]) -> None:
    """A request with no timeout extension is sent with no timeouts, from the given local address."""
    transport = native(local_address="127.0.0.1")
    async with Wire(keep_alive()) as wire:
        response = await fetch(transport, httpx.Request("GET", wire.origin + "/"))
        assert response.status_code == 200
        assert wire.peers[0].writer.get_extra_info("peername")[0] == "127.0.0.1"


async def test_connection_refused_without_timeouts(native: Callable[..., NativeTransport]) -> None:
    """Nothing listening and no timeout extension: ConnectError naming the address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{dead}"):
        await fetch(native(), httpx.Request("GET", f"http://127.0.0.1:{dead}/"))


async def test_ipv6_loopback_target(native: Callable[..., NativeTransport]) -> None:
    """A request to http://[::1]:PORT/ connects over IPv6 loopback and reuses the connection."""
    if not socket.has_ipv6:  # pragma: no cover - depends on the machine
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:  # pragma: no cover - depends on the machine
        pytest.skip("no IPv6 loopback")
    transport = native()
    async with Wire(keep_alive(lambda seen: ok(seen.header("host").encode())), host="::1") as wire:  # type: ignore[union-attr]
        first = await fetch(transport, wire.request())
        await fetch(transport, wire.request())
        assert first.content == f"[::1]:{wire.port}".encode()
        assert wire.connections == 1


# == TLS and proxies ========================================================================


@dataclass
class TLS:
    server: ssl.SSLContext
    client: ssl.SSLContext
    sni: list[str | None]


@pytest.fixture
def tls(tls_files: tuple[Path, Path]) -> TLS:
    """A server context recording the SNI names it is asked for, and a client context trusting it."""
    names: list[str | None] = []
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*tls_files)
    server.sni_callback = lambda sock, name, ctx: names.append(name)
    return TLS(server, ssl.create_default_context(cafile=str(tls_files[0])), names)


async def test_sni_hostname_extension(native: Callable[..., NativeTransport], tls: TLS) -> None:
    """The sni_hostname extension is sent as SNI and the certificate is checked against it."""
    transport = native(verify=tls.client)
    async with Wire(keep_alive(lambda seen: ok(b"secure")), ssl_context=tls.server) as wire:
        request = wire.request(extensions={**timeouts(), "sni_hostname": "tls.test"})
        assert (await fetch(transport, request)).content == b"secure"
        assert tls.sni == ["tls.test"]


async def test_tls_with_a_ca_bundle_path(native: Callable[..., NativeTransport], tls: TLS, tls_files: tuple[Path, Path]) -> None:
    """verify given as a CA bundle path trusts that bundle; the context is built once and reused."""
    transport = native(verify=str(tls_files[0]))
    async with Wire(keep_alive(lambda seen: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1"), ssl_context=tls.server) as wire:
        with pytest.warns(DeprecationWarning):
            await fetch(transport, wire.request())
        await fetch(transport, wire.request())
        assert wire.connections == 2


def forward_proxy(seen_by_proxy: list[Seen]) -> Handler:
    """An HTTP forward proxy that answers every request itself, recording what it got."""

    async def handler(wire: Wire, peer: Peer) -> None:
        while (seen := await peer.request()) is not None:
            seen_by_proxy.append(seen)
            await peer.send(ok(seen.target.encode()))

    return handler


async def test_http_forward_proxy_gets_absolute_form_and_credentials(native: Callable[..., NativeTransport]) -> None:
    """Through an HTTP proxy: absolute-form targets, Proxy-Authorization from the URL, the proxy's own headers."""
    got: list[Seen] = []
    async with Wire(forward_proxy(got)) as proxy:
        proxy_url = f"http://user:pa%40ss@127.0.0.1:{proxy.port}"
        transport = native(proxy=httpx.Proxy(proxy_url, headers={"X-Proxy-Team": "infra"}))
        for url in ("http://upstream.test:8080/p?q=1", "http://upstream.test/", "http://[::1]:81/v6"):
            await fetch(transport, httpx.Request("GET", url, headers={"Host": "upstream"}, extensions=timeouts()))
        assert [s.target for s in got] == ["http://upstream.test:8080/p?q=1", "http://upstream.test/", "http://[::1]:81/v6"]
        assert all(s.header("proxy-authorization") == "Basic dXNlcjpwYUBzcw==" for s in got)
        assert all(s.header("x-proxy-team") == "infra" for s in got)
        assert got[0].header("host") == "upstream"
        await fetch(transport, httpx.Request("GET", "http://upstream.test/again", extensions=timeouts()))
        assert proxy.connections == 3  # one kept-alive connection to the proxy per upstream origin
        assert "proxy=yes" in repr(transport)


async def test_proxy_given_as_a_string(native: Callable[..., NativeTransport]) -> None:
    """A plain proxy URL string works (with no timeouts) and sends no Proxy-Authorization."""
    got: list[Seen] = []
    async with Wire(forward_proxy(got)) as proxy:
        transport = native(proxy=proxy.origin)
        await fetch(transport, httpx.Request("GET", "http://upstream.test/s"))  # no timeout extension either
        assert got[0].target == "http://upstream.test/s" and got[0].header("proxy-authorization") is None


def connect_proxy(heads: list[Seen], answer: bytes | None = None) -> Handler:
    """A CONNECT proxy: records the CONNECT, then tunnels bytes both ways (or answers ``answer`` and stops)."""

    async def handler(wire: Wire, peer: Peer) -> None:
        seen = await peer.request()
        assert seen is not None and seen.method == "CONNECT"
        heads.append(seen)
        if answer is not None:
            await peer.send(answer)
            return
        host, port = seen.target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await peer.send(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(peer.reader, up_writer), pipe(up_reader, peer.writer))
        finally:
            up_writer.close()

    return handler


async def test_https_through_a_connect_tunnel(native: Callable[..., NativeTransport], tls: TLS) -> None:
    """HTTPS via a proxy: CONNECT with Proxy-Authorization and the proxy headers, then TLS to the target, then reuse."""
    heads: list[Seen] = []
    async with (
        Wire(keep_alive(lambda seen: ok(b"tunnelled " + seen.target.encode())), ssl_context=tls.server) as target,
        Wire(connect_proxy(heads)) as proxy,
    ):
        transport = native(
            verify=tls.client,
            proxy=httpx.Proxy(f"http://u:p@127.0.0.1:{proxy.port}", headers={"X-Via": "test"}),
        )
        assert (await fetch(transport, target.request("/one"))).content == b"tunnelled /one"
        assert (await fetch(transport, target.request("/two"))).content == b"tunnelled /two"
        assert len(heads) == 1 and heads[0].target == f"127.0.0.1:{target.port}"
        assert heads[0].header("host") == f"127.0.0.1:{target.port}"
        assert heads[0].header("proxy-authorization") == "Basic dTpw"
        assert heads[0].header("x-via") == "test"
        assert [s.target for s in target.seen] == ["/one", "/two"]  # origin-form inside the tunnel
        assert target.seen[0].header("proxy-authorization") is None
        assert target.connections == proxy.connections == 1


async def test_proxy_refusing_connect_is_proxy_error(native: Callable[..., NativeTransport]) -> None:
    """A proxy answering CONNECT with 407 raises ProxyError with the status; the slot is freed."""
    heads: list[Seen] = []
    answer = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    async with Wire(connect_proxy(heads, answer)) as proxy:
        transport = native(proxy=proxy.origin, verify=False)
        with pytest.raises(httpx.ProxyError, match="407 Proxy Authentication Required"):
            await fetch(transport, httpx.Request("GET", "https://upstream.test/", extensions=timeouts()))
        assert pool_of(transport).open_connections == 0
        assert heads[0].target == "upstream.test:443"


async def test_unreachable_proxy_is_proxy_error(native: Callable[..., NativeTransport]) -> None:
    """Nothing listening at the proxy address: ProxyError naming the proxy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    transport = native(proxy=f"http://127.0.0.1:{dead}")
    with pytest.raises(httpx.ProxyError, match=f"proxy 127.0.0.1:{dead}"):
        await fetch(transport, httpx.Request("GET", "http://upstream.test/", extensions=timeouts()))
    assert pool_of(transport).open_connections == 0


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", httpx.URL("socks5h://127.0.0.1:1080")])
def test_socks_proxy_is_a_configuration_error(proxy: Any) -> None:
    """A SOCKS proxy is refused at construction with ConfigurationError naming the proxy field."""
    with pytest.raises(ConfigurationError) as info:
        NativeTransport(proxy=proxy)
    assert info.value.field == "proxy"


async def test_repr_tracks_the_pool(native: Callable[..., NativeTransport]) -> None:
    """repr() says idle before the first request, then the open and idle connection counts and the limits."""
    transport = native(limits=httpx.Limits(max_connections=7, keepalive_expiry=3.0))
    assert repr(transport) == "NativeTransport(idle, max_connections=7, keepalive_expiry=3.0, proxy=no)"
    async with Wire(keep_alive()) as wire:
        await fetch(transport, wire.request())
        assert repr(transport) == "NativeTransport(open, 1 connections (1 idle), max_connections=7, keepalive_expiry=3.0, proxy=no)"
    await transport.aclose()
    assert "idle" in repr(transport) and transport.pool is None



# == Unix domain sockets ======================================================================


async def test_unix_domain_socket(native: Callable[..., NativeTransport], tmp_path: Path) -> None:
    """uds= sends every request over the socket, keeps the URL's Host header, and reuses the connection."""
    seen: list[Seen] = []
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while (request := await read_request(reader)) is not None:
                seen.append(request)
                writer.write(ok(b"via socket"))
                await writer.drain()
        finally:
            writer.close()

    path = str(tmp_path / "api.sock")
    server = await asyncio.start_unix_server(serve, path)
    try:
        transport = native(uds=path)
        for _ in range(2):
            response = await fetch(transport, httpx.Request("GET", "http://docker/v1/info", extensions=timeouts()))
            assert response.content == b"via socket"
        assert accepted == 1 and [s.target for s in seen] == ["/v1/info", "/v1/info"]
        assert seen[0].header("host") == "docker"
    finally:
        server.close()
        await server.wait_closed()


async def test_unix_domain_socket_missing_is_connect_error(native: Callable[..., NativeTransport], tmp_path: Path) -> None:
    """A uds path nobody listens on is httpx.ConnectError naming the socket."""
    missing = str(tmp_path / "nobody.sock")
    with pytest.raises(httpx.ConnectError, match=r"nobody\.sock"):
        await fetch(native(uds=missing), httpx.Request("GET", "http://localhost/", extensions=timeouts()))


def test_unix_domain_socket_with_proxy_is_a_configuration_error() -> None:
    """uds together with a proxy or a local address is refused, naming the field."""
    for extra in ({"proxy": "http://127.0.0.1:3128"}, {"local_address": "127.0.0.1"}):
        with pytest.raises(ConfigurationError) as info:
            NativeTransport(uds="/tmp/x.sock", **extra)  # type: ignore[arg-type]
        assert info.value.field == "uds"
