"""NativeTransport against hostile servers, over real loopback sockets.

Each test plays a server that misbehaves on purpose, byte by byte: a head
that never ends, 20,000 headers, an endless chunk extension or trailer, a
head full of obs-folds, connections closed or reset between requests. The
client must fail fast with a typed httpx error naming the limit (never buffer
without bound, never hang, never raise a bare exception) and must never send
a request twice when the server may have seen it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from httptools import HttpResponseParser

from httpx_resilience import ConfigurationError, InvalidURLError
from httpx_resilience.transports import NativeTransport, make_transport
from httpx_resilience.transports.native import _parse
from httpx_resilience.transports.native._connection import H1Connection
from httpx_resilience.transports.native._pool import ConnectionPool

WAIT: Final = 5.0  # the bound on any wait: a hang fails the test instead of blocking it
TIMEOUTS: Final = {"connect": WAIT, "read": WAIT, "write": WAIT, "pool": WAIT}
KIB: Final = 1024
ENDLESS: Final = 32 * 1024 * KIB  # what an "endless" server sends at most before it gives up

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


# -- a raw loopback server -------------------------------------------------------------------


class Raw:
    """An asyncio server in the test's loop: each connection reads a request head, then runs ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Raw:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client gave up (as it should), or the test is over
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), WAIT)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def request_head(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        return head


def request(url: str, method: str = "GET", **kw: Any) -> httpx.Request:
    return httpx.Request(method, url, extensions={"timeout": TIMEOUTS}, **kw)


async def fetch(transport: httpx.AsyncBaseTransport, req: httpx.Request) -> httpx.Response:
    """Send, read the whole body, close: what httpx's client does."""
    response = await asyncio.wait_for(transport.handle_async_request(req), WAIT)
    try:
        await asyncio.wait_for(response.aread(), WAIT)
    finally:
        await response.aclose()
    return response


@pytest.fixture
async def native() -> AsyncIterator[Callable[..., NativeTransport]]:
    """Build NativeTransports; every one is closed after the test."""
    made: list[NativeTransport] = []

    def build(**kw: Any) -> NativeTransport:
        made.append(NativeTransport(**kw))
        return made[-1]

    yield build
    for transport in made:
        await transport.aclose()


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait (polling the loop) until ``condition()`` holds; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def pool_of(transport: NativeTransport) -> ConnectionPool:
    pool = transport.pool
    assert pool is not None
    return pool


def sends(prefix: bytes, filler: bytes = b"", *, then: bytes = b"") -> Script:
    """A script: after the request, ``prefix``, then ``filler`` over and over (up to ENDLESS), then ``then``."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(prefix)
        await writer.drain()
        sent = 0
        while filler and sent < ENDLESS:
            writer.write(filler)
            await writer.drain()
            sent += len(filler)
        writer.write(then)
        await writer.drain()
        await reader.read()  # until the client closes

    return script


# == 1. the response head is bounded ==========================================================

LINE: Final = b"X-Filler: " + b"v" * 1000 + b"\r\n"

ENDLESS_HEADS: Final = {
    "1 MB of headers": (b"HTTP/1.1 200 OK\r\n", b"", LINE * 1000 + b"Content-Length: 0\r\n\r\n"),
    "a header line that does not end": (b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 16 * KIB, b""),
    "a header name that does not end": (b"HTTP/1.1 200 OK\r\nX-", b"n" * 16 * KIB, b""),
    "a reason phrase that does not end": (b"HTTP/1.1 200 ", b"r" * 16 * KIB, b""),
    "endless obs-folds": (b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n", b" folded line\r\n" * 1000, b""),
    "endless interim heads": (b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 500, b""),
}


@pytest.mark.parametrize("prefix, filler, then", ENDLESS_HEADS.values(), ids=ENDLESS_HEADS.keys())
async def test_head_past_max_head_bytes_fails_at_the_limit(
    native: Callable[..., NativeTransport], prefix: bytes, filler: bytes, then: bytes
) -> None:
    """A head longer than 64 KiB fails with RemoteProtocolError naming the limit, without buffering on."""
    transport = native()
    async with Raw(sends(prefix, filler, then=then)) as server:
        tracemalloc.start()
        try:
            with pytest.raises(httpx.RemoteProtocolError, match=r"max_head_bytes=65536"):
                await fetch(transport, request(server.url()))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # What the client kept is a few reads' worth, not the megabytes the server had to send.
    assert peak < 8 * 1024 * KIB
    assert pool_of(transport).open_connections == 0


@pytest.mark.parametrize("pieces", [1, 7], ids=["one write", "seven writes"])
async def test_interim_flood_with_the_final_head_in_the_same_read_fails(
    native: Callable[..., NativeTransport], pieces: int
) -> None:
    """75 KB of 100 Continue heads and the final 200 in one write (or a few): past
    max_head_bytes the request fails, though the final head arrived in the same read."""
    flood = b"HTTP/1.1 100 Continue\r\n\r\n" * 3000 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    size = -(-len(flood) // pieces)

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for start in range(0, len(flood), size):
            writer.write(flood[start : start + size])
            await writer.drain()
        await reader.read()  # until the client closes

    transport = native()
    async with Raw(script) as server:
        with pytest.raises(httpx.RemoteProtocolError, match=r"max_head_bytes=65536"):
            await fetch(transport, request(server.url()))
    assert pool_of(transport).open_connections == 0


async def test_more_than_max_headers_fails_at_the_limit(
    native: Callable[..., NativeTransport],
) -> None:
    """20,000 header fields: RemoteProtocolError naming max_headers=100 (the 101st field stops the parser)."""
    many = b"".join(b"X-%05d: v\r\n" % i for i in range(20_000))
    transport = native()
    async with Raw(sends(b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n")) as server:
        with pytest.raises(httpx.RemoteProtocolError, match=r"head has more than max_headers=100"):
            await fetch(transport, request(server.url()))


@pytest.mark.parametrize("split", [False, True], ids=["one read", "byte by byte"])
async def test_limits_are_constructor_arguments(
    native: Callable[..., NativeTransport], split: bool
) -> None:
    """max_head_bytes and max_headers bound the head exactly: at the limit it passes, one past it fails."""

    def head(size: int) -> bytes:
        start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
        return start + b"p" * (size - len(start) - 4) + b"\r\n\r\n"

    def fields(n: int) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(n - 1))
            + b"Content-Length: 2\r\n\r\n"
        )

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            target = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
            kind, n = target.strip(b"/").split(b"/")
            raw = (head if kind == b"bytes" else fields)(int(n)) + b"ok"
            for piece in [raw[i : i + 1] for i in range(len(raw))] if split else [raw]:
                writer.write(piece)
                await writer.drain()
                if split:
                    await asyncio.sleep(0)

    transport = native(max_head_bytes=2048, max_headers=5)
    async with Raw(script) as server:
        assert (await fetch(transport, request(server.url("/bytes/2048")))).content == b"ok"
        with pytest.raises(httpx.RemoteProtocolError, match=r"max_head_bytes=2048"):
            await fetch(transport, request(server.url("/bytes/2049")))
        assert (await fetch(transport, request(server.url("/fields/5")))).content == b"ok"
        with pytest.raises(httpx.RemoteProtocolError, match=r"max_headers=5"):
            await fetch(transport, request(server.url("/fields/6")))


@pytest.mark.parametrize(
    "kw",
    [
        {"max_head_bytes": 0},
        {"max_head_bytes": 1023},
        {"max_head_bytes": 65536.0},
        {"max_head_bytes": "64k"},
        {"max_head_bytes": True},
        {"max_headers": 0},
        {"max_headers": -1},
        {"max_headers": None},
    ],
    ids=repr,
)
def test_limits_are_validated(kw: dict[str, Any]) -> None:
    """A limit that is not a whole number in its range is a ConfigurationError naming the argument."""
    (name,) = kw
    with pytest.raises(ConfigurationError, match=name) as info:
        NativeTransport(**kw)
    assert info.value.field == name


class CountingParser(HttpResponseParser):
    """httptools' parser, counting the bytes fed to it (all instances together)."""

    fed = 0

    def feed_data(self, data: bytes) -> None:
        CountingParser.fed += len(data)
        super().feed_data(data)


async def test_obs_folds_are_parsed_in_linear_work(
    native: Callable[..., NativeTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2 MB head of folded lines, arriving in small reads, is fed to llhttp at most twice over."""
    monkeypatch.setattr(_parse, "HttpResponseParser", CountingParser)
    folds = b"".join(b"  fold %06d\r\n" % i for i in range(150_000))
    raw = b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n" + folds + b"Content-Length: 2\r\n\r\nok"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for i in range(0, len(raw), 2 * KIB):
            writer.write(raw[i : i + 2 * KIB])
            await writer.drain()
            await asyncio.sleep(0)  # most reads are one 2 KiB piece
        await reader.read()

    transport = native(max_head_bytes=4 * 1024 * KIB)
    CountingParser.fed = 0
    async with Raw(script) as server:
        response = await fetch(transport, request(server.url()))
    value = response.headers["x-folded"]
    assert value.startswith("first fold 000000 fold 000001") and value.endswith("fold 149999")
    assert response.content == b"ok"
    assert CountingParser.fed <= 2 * len(
        raw
    )  # re-parsing what had arrived on each read was quadratic


# == the body side: framing and trailers are bounded too =========================================

CHUNKED: Final = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"

ENDLESS_FRAMING: Final = {
    "a chunk extension that does not end": (CHUNKED + b"5;name=", b"x" * 16 * KIB, b""),
    "a trailer line that does not end": (CHUNKED + b"0\r\nX-Trailer: ", b"t" * 16 * KIB, b""),
    "trailers without end": (CHUNKED + b"0\r\n", b"X-T: 1234567890123456789\r\n" * 500, b""),
}


@pytest.mark.parametrize(
    "prefix, filler, then", ENDLESS_FRAMING.values(), ids=ENDLESS_FRAMING.keys()
)
async def test_body_framing_past_the_limit_fails(
    native: Callable[..., NativeTransport], prefix: bytes, filler: bytes, then: bytes
) -> None:
    """More than 64 KiB of chunk framing or trailers without body data fails while the body is read."""
    transport = native(max_headers=100_000)  # the bytes, not the count, are under test
    async with Raw(sends(prefix, filler, then=then)) as server:
        tracemalloc.start()
        try:
            response = await asyncio.wait_for(
                transport.handle_async_request(request(server.url())), WAIT
            )
            with pytest.raises(httpx.RemoteProtocolError, match=r"without body data"):
                await asyncio.wait_for(response.aread(), WAIT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await response.aclose()
    assert response.status_code == 200
    assert peak < 8 * 1024 * KIB
    assert pool_of(transport).open_connections == 0


async def test_more_than_max_headers_trailers_fail(native: Callable[..., NativeTransport]) -> None:
    """A trailer section of 20,000 fields fails naming max_headers; one of 100 is read (and dropped)."""
    many = b"".join(b"X-%05d: v\r\n" % i for i in range(20_000))
    fine = b"".join(b"X-%05d: v\r\n" % i for i in range(100))
    transport = native()
    async with Raw(sends(CHUNKED + b"0\r\n" + fine + b"\r\n")) as server:
        response = await fetch(transport, request(server.url()))
        assert response.content == b"hello"
    async with Raw(sends(CHUNKED + b"0\r\n" + many + b"\r\n")) as server:
        with pytest.raises(
            httpx.RemoteProtocolError, match=r"trailer section has more than max_headers=100"
        ):
            await fetch(transport, request(server.url()))


# == 2. bad URLs never reach a socket ============================================================

BAD_URLS: Final = {
    "port 0": "http://127.0.0.1:0/",
    "port 99999": "http://127.0.0.1:99999/",
    "port 65536": "https://example.test:65536/",
    "ipv6 port 0": "http://[::1]:0/",
    "300-character label": "http://" + "a" * 300 + ".test/",
    "64-character label": "https://" + "a" * 64 + ".test/",
    "empty label": "http://a..test/",
    "name past 253": "http://" + "abcdefgh." * 30 + "test/",
    "no host": "http:///path",
    "hyphen first": "http://-a.test/",
    "space": "http://a b.test/",
    "percent": "http://a%00b.test/",
    "five numbers": "http://1.2.3.4.5/",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
async def test_bad_url_is_invalid_url_before_any_connection(
    native: Callable[..., NativeTransport], url: str
) -> None:
    """Each bad URL is InvalidURLError (an httpx.InvalidURL) and no connection is opened."""
    transport = native()
    with pytest.raises(InvalidURLError) as info:
        await transport.handle_async_request(request(url))
    assert isinstance(info.value, httpx.InvalidURL)
    assert transport.pool is None or transport.pool.open_connections == 0


ODD_REQUESTS: Final = {
    "non-ASCII method": (lambda url: httpx.Request("GÉT", url), httpx.LocalProtocolError),
    "method with a space": (
        lambda url: httpx.Request("GET /x HTTP/1.1\r\nX", url),
        httpx.LocalProtocolError,
    ),
    "ftp scheme": (lambda url: httpx.Request("GET", "ftp://127.0.0.1/"), httpx.UnsupportedProtocol),
    "bad sni_hostname": (
        lambda url: httpx.Request(
            "GET", url.replace("http:", "https:"), extensions={"sni_hostname": "a" * 300}
        ),
        httpx.ConnectError,
    ),
    "sni_hostname with a leading dot": (
        lambda url: httpx.Request(
            "GET", url.replace("http:", "https:"), extensions={"sni_hostname": ".x"}
        ),
        httpx.ConnectError,
    ),
    "unresolvable .invalid name": (
        lambda url: httpx.Request("GET", "http://x_y.invalid/"),
        httpx.ConnectError,
    ),
}


@pytest.mark.parametrize("build, error", ODD_REQUESTS.values(), ids=ODD_REQUESTS.keys())
async def test_nothing_bare_escapes(
    native: Callable[..., NativeTransport],
    build: Callable[[str], httpx.Request],
    error: type[Exception],
) -> None:
    """Odd methods, schemes, TLS names and hosts end in the httpx error for them, never a bare one."""
    async with Raw(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as server:
        with pytest.raises(error):
            await asyncio.wait_for(native().handle_async_request(build(server.url())), WAIT)


@pytest.mark.parametrize(
    "proxy", ["http://127.0.0.1:0", "http://127.0.0.1:99999", "http://" + "a" * 70 + ".test"]
)
def test_bad_proxy_url_is_a_configuration_error(proxy: str) -> None:
    """A proxy that no connection could reach is refused when the transport is built."""
    with pytest.raises(ConfigurationError) as info:
        NativeTransport(proxy=proxy)
    assert info.value.field == "proxy"


# == 3. stale keep-alive connections ============================================================


async def read_post(reader: asyncio.StreamReader) -> bytes:
    """One POST with a Content-Length body: its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


@pytest.mark.parametrize("kind", ["native", "httpx", "aiohttp"])
async def test_server_closing_after_each_response_loses_no_request(kind: str) -> None:
    """A server that answers (keep-alive, as far as it says) and closes: 200 POSTs in a row all succeed, each sent once."""
    bodies: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies.append(await read_post(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    transport = make_transport(kind)
    failures = 0
    async with (
        Raw(script) as server,
        httpx.AsyncClient(transport=transport, timeout=WAIT) as client,
    ):
        for i in range(200):
            try:
                response = await client.post(server.url(), content=b"post %d" % i)
                assert response.content == b"ok"
            except httpx.TransportError:
                failures += 1
    assert failures == 0
    assert bodies == [b"post %d" % i for i in range(200)]  # none twice, none lost


class ThreadServer:
    """A blocking socket server in a thread, so that what it does reaches the client's kernel
    while the client's event loop is not running (the race a separate server process creates)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.bodies: list[bytes] = []
        self.connections = 0
        self.go = threading.Event()  # set by the test: do the next thing
        self.done = threading.Event()  # set by the server: it is done
        self.stop = threading.Event()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def accept(self) -> socket.socket | None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.sock.accept()
                conn.settimeout(0.05)
                self.connections += 1
                return conn
        return None

    def recv(self, conn: socket.socket) -> bytes:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                return conn.recv(65536)
        return b""

    def read_post(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            part = self.recv(conn)
            if not part:
                return None
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(x.split(b":")[1])
            for x in head.split(b"\r\n")
            if x.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += self.recv(conn)
        self.bodies.append(body)
        return body

    def serve(self, first: Callable[[socket.socket], None]) -> None:
        """The first connection: one request, answered, then ``first(conn)``; later ones: answer all."""
        conn = self.accept()
        if conn is None:
            return
        with conn:
            self.read_post(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            self.go.wait(WAIT)
            first(conn)
        self.done.set()
        while (conn := self.accept()) is not None:
            with conn, contextlib.suppress(OSError):
                while self.read_post(conn) is not None:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")

    def start(self, first: Callable[[socket.socket], None]) -> threading.Thread:
        thread = threading.Thread(target=self.serve, args=(first,), daemon=True)
        thread.start()
        return thread

    def close(self, thread: threading.Thread) -> None:
        self.go.set()
        self.stop.set()
        thread.join(WAIT)
        self.sock.close()


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def behind_the_loops_back(server: ThreadServer) -> None:
    """Let the server act and its packets arrive while this loop cannot run (a blocking wait)."""
    server.go.set()
    assert server.done.wait(WAIT)
    time.sleep(0.05)  # blocking on purpose: the loop must not see the close before the next request


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_connection_the_server_closed_is_not_reused_even_before_the_loop_sees_it(
    native: Callable[..., NativeTransport], how: str
) -> None:
    """The server closes (FIN) or resets (RST) the idle connection; the next POST goes on a new one, once."""
    server = ThreadServer()
    thread = server.start(reset if how == "reset" else lambda conn: None)
    transport = native()
    try:
        assert (
            await fetch(transport, request(server.url(), "POST", content=b"one"))
        ).content == b"ok"
        behind_the_loops_back(server)
        response = await fetch(transport, request(server.url(), "POST", content=b"two"))
    finally:
        server.close(thread)
    assert response.content == b"second"
    assert server.bodies == [b"one", b"two"] and server.connections == 2


async def test_request_refused_by_a_reset_socket_is_sent_again_on_a_new_connection(
    native: Callable[..., NativeTransport], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reset lands between the reuse check and the write: the write fails with nothing sent,
    and the POST goes once, on a new connection."""
    server = ThreadServer()
    thread = server.start(reset)
    transport = native()
    try:
        assert (
            await fetch(transport, request(server.url(), "POST", content=b"one"))
        ).content == b"ok"
        behind_the_loops_back(server)
        # As if the reset arrived just after the check: the check finds nothing.
        monkeypatch.setattr(H1Connection, "usable", lambda self: not self.closed)
        response = await fetch(transport, request(server.url(), "POST", content=b"two"))
    finally:
        server.close(thread)
    assert response.content == b"second"
    assert server.bodies == [b"one", b"two"] and server.connections == 2


@pytest.mark.parametrize("reused", [False, True], ids=["new connection", "reused connection"])
async def test_post_the_server_may_have_read_is_not_sent_again(
    native: Callable[..., NativeTransport], reused: bool
) -> None:
    """The server reads the POST, then resets: the error reaches the caller and the POST went once."""
    bodies: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            body = await read_post(reader)
            bodies.append(body)
            if body == b"warm-up":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                continue
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return

    transport = native()
    async with Raw(script) as server:
        if reused:
            await fetch(transport, request(server.url(), "POST", content=b"warm-up"))
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await fetch(transport, request(server.url(), "POST", content=b"payment"))
    assert bodies.count(b"payment") == 1 and server.connections == 1


async def test_origin_that_closes_after_every_response_is_not_kept(
    native: Callable[..., NativeTransport],
) -> None:
    """Once idle connections are found closed right after their response six times with no
    reuse between, that origin's are not kept (the client closes them after their response, before the
    server's close can race a request)."""
    closed_first: list[bool] = []  # per connection: whether the client closed before the server did

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_post(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        try:
            closed_first.append(await asyncio.wait_for(reader.read(), 0.05) == b"")
        except asyncio.TimeoutError:
            closed_first.append(False)
        writer.close()

    transport = native()
    async with Raw(script) as server:
        for i in range(6):
            await fetch(transport, request(server.url(), "POST", content=b"%d" % i))
            pool = pool_of(transport)
            assert pool.idle_connections == 1  # kept: not yet known to close at once
            await eventually(lambda p=pool: p.idle_connections == 0)  # the server closes it, 50 ms after
        for i in (6, 7):
            await fetch(transport, request(server.url(), "POST", content=b"%d" % i))
            assert pool.idle_connections == 0 and pool.open_connections == 0
        await eventually(lambda: len(closed_first) == 8)
    assert closed_first == [False] * 6 + [True, True] and server.connections == 8


async def test_a_server_closing_now_and_then_keeps_its_connections_reused(
    native: Callable[..., NativeTransport],
) -> None:
    """Prompt closes with successful reuses in between (each connection serves two requests,
    then closes at once: half the responses) never turn keep-alive off for the origin."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_post(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    transport = native()
    async with Raw(script) as server:
        for i in range(30):
            await fetch(transport, request(server.url(), "POST", content=b"%d" % i))
            pool = pool_of(transport)
            if i % 2 == 0:
                assert pool.idle_connections == 1  # a new connection: kept for its reuse
            else:  # the server closes after the second response: wait until it is seen
                await eventually(lambda p=pool: p.idle_connections == 0)
    assert server.connections == 15


async def test_keep_alive_timeout_of_a_normal_server_changes_nothing(
    native: Callable[..., NativeTransport],
) -> None:
    """A server closing connections idle for 0.5 s (its keep-alive timeout) keeps being reused."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                await asyncio.wait_for(read_post(reader), 0.5)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()

    transport = native()
    async with Raw(script) as server:
        await fetch(transport, request(server.url(), "POST", content=b"a"))
        await asyncio.sleep(0.8)  # the server closes the idle connection
        await fetch(transport, request(server.url(), "POST", content=b"b"))
        await fetch(transport, request(server.url(), "POST", content=b"c"))
        assert server.connections == 2  # b opened a new one, c reused it
        assert pool_of(transport).idle_connections == 1


# == 4. the pool forgets origins ===================================================================


async def test_pool_keeps_no_entry_for_origins_it_no_longer_holds(
    native: Callable[..., NativeTransport], tmp_path: Path
) -> None:
    """1,000 distinct origins (one Unix socket): the per-origin entries go with their connections."""
    path = str(tmp_path / "s")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(serve, path)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=None, keepalive_expiry=0.3)
    transport = native(uds=path, limits=limits)
    try:
        for start in range(0, 1000, 50):
            reqs = [request(f"http://h{i}.test/") for i in range(start, start + 50)]
            await asyncio.gather(*(fetch(transport, r) for r in reqs))
        pool = pool_of(transport)
        assert 0 < pool.idle_origins <= 1000
        await eventually(lambda: pool.idle_origins == 0)  # the expiry timer, no request needed
        assert pool.idle_origins == 0 and pool.idle_connections == 0 and pool.open_connections == 0
        # Reused and then closed by the peer: the entry goes too.
        await fetch(transport, request("http://again.test/"))
        assert pool.idle_origins == 1
        await fetch(transport, request("http://again.test/"))
        assert pool.idle_origins == 1
    finally:
        server.close()
        await server.wait_closed()
