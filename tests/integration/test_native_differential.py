"""NativeTransport against httpx's own transport: the same raw server bytes must give the same result.

Every case in the corpus is a script of exact bytes (and closes, resets,
pauses) that a loopback asyncio server in the test's loop plays after reading
the request. The script runs once against ``NativeTransport()`` and once
against ``httpx.AsyncHTTPTransport()`` (httpcore + h11), and the two outcomes
must agree: the same status, raw header list, decoded body, reason phrase and
HTTP version, or the same httpx exception class. Valid responses are also
replayed cut into random pieces (seeded), which must not change the result.

Where the two transports legitimately differ, the difference is spelled out
in :data:`DIFFERENCES`, with the reason, instead of being papered over.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest

from httpx_resilience.transports import NativeTransport

WAIT: Final = 5.0  # upper bound for any wait in the harness: a hang fails instead of blocking
SEEDS: Final = (1, 2, 3)  # segmentations each valid response is replayed in
MAX_PIECE: Final = 7  # pieces are 1..MAX_PIECE bytes

# -- the script a server plays --------------------------------------------------------------


@dataclass(frozen=True)
class Close:
    """Close the connection cleanly (FIN)."""


@dataclass(frozen=True)
class Reset:
    """Close the connection with RST (SO_LINGER 0)."""


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before the next step (lets the client read what was sent)."""

    seconds: float


@dataclass(frozen=True)
class Hold:
    """Send nothing more; wait until the client gives up and closes."""


Step = bytes | Close | Reset | Pause | Hold
CLOSE: Final = Close()
RESET: Final = Reset()
HOLD: Final = Hold()


@dataclass(frozen=True)
class Case:
    """One server behaviour: what it sends after reading the request."""

    id: str
    steps: tuple[Step, ...]
    method: str = "GET"
    read_timeout: float = 0.5


def ok_head(*lines: bytes, status: bytes = b"200 OK", version: bytes = b"HTTP/1.1") -> bytes:
    return version + b" " + status + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


GZIPPED: Final = gzip.compress(b"compressed body " * 20, mtime=0)
# 99 + Content-Length: exactly NativeTransport's default max_headers (100).
MANY: Final = tuple(b"X-Header-%03d: value number %d" % (i, i) for i in range(99))

VALID: Final = (
    Case("content-length", (ok_head(b"Content-Length: 11", b"Content-Type: text/plain") + b"hello world",)),
    Case(
        "chunked-ext-trailers",
        (
            ok_head(b"Transfer-Encoding: chunked", b"Trailer: X-Trailer")
            + b"5;name=value\r\nhello\r\n6;flag\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n",
        ),
    ),
    Case("close-delimited", (ok_head(b"X-Framing: none") + b"until the server closes", CLOSE)),
    Case("no-content-204", (ok_head(b"X-A: 1", status=b"204 No Content"),)),
    Case("not-modified-304-with-length", (ok_head(b"Content-Length: 10", b"ETag: \"x\"", status=b"304 Not Modified"),)),
    Case("head-with-content-length", (ok_head(b"Content-Length: 1000"),), method="HEAD"),
    Case("http10-close", (ok_head(b"Content-Length: 2", version=b"HTTP/1.0") + b"ok", CLOSE)),
    Case("http10-close-delimited", (ok_head(version=b"HTTP/1.0") + b"no length", CLOSE)),
    Case(
        "http10-keep-alive",
        (ok_head(b"Connection: keep-alive", b"Content-Length: 2", version=b"HTTP/1.0") + b"ok",),
    ),
    Case(
        "100-continue-first",
        (b"HTTP/1.1 100 Continue\r\n\r\n" + ok_head(b"Content-Length: 4", status=b"201 Created") + b"done",),
    ),
    Case("many-headers", (ok_head(*MANY, b"Content-Length: 2") + b"ok",)),
    Case("obs-fold", (ok_head(b"X-Folded: first", b" second", b"\tthird", b"Content-Length: 2") + b"ok",)),
    Case(
        "duplicate-headers",
        (ok_head(b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"Vary: A", b"vary: B", b"Content-Length: 2") + b"ok",),
    ),
    Case(
        "gzip",
        (ok_head(b"Content-Encoding: gzip", b"Content-Length: %d" % len(GZIPPED)) + GZIPPED,),
    ),
    Case("header-whitespace", (ok_head(b"X-Space:   padded \t ", b"X-Empty:", b"Content-Length: 2") + b"ok",)),
    Case("no-reason-phrase", (ok_head(b"Content-Length: 2", status=b"200 ") + b"ok",)),
    Case("odd-reason-phrase", (ok_head(b"Content-Length: 2", status=b"299 Very  Odd\tReason") + b"ok",)),
)

HEAD_11: Final = ok_head(b"Content-Length: 10")
CHUNKED_HEAD: Final = ok_head(b"Transfer-Encoding: chunked")

FAULTS: Final = (
    Case("close-before-any-byte", (CLOSE,)),
    Case("close-mid-status-line", (b"HTTP/1.1 20", CLOSE)),
    Case("close-mid-headers", (b"HTTP/1.1 200 OK\r\nContent-Len", CLOSE)),
    Case("close-mid-body", (HEAD_11 + b"01234", CLOSE)),
    Case("close-mid-chunked-body", (CHUNKED_HEAD + b"a\r\n01234", CLOSE)),
    Case("close-after-last-chunk-without-crlf", (CHUNKED_HEAD + b"2\r\nok\r\n0\r\n", CLOSE)),
    Case("reset-before-headers", (RESET,)),
    Case("reset-mid-headers", (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n", Pause(0.05), RESET)),
    Case("reset-after-headers", (HEAD_11 + b"01234", Pause(0.05), RESET)),
    Case("garbage-status-line", (b"garbage, not HTTP\r\n\r\n", CLOSE)),
    Case("garbage-status-line-kept-open", (b"SSH-2.0-OpenSSH_9.6\r\n\r\n",)),
    Case("invalid-chunk-size", (CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",)),
    Case("content-length-not-a-number", (ok_head(b"Content-Length: ten") + b"0123456789",)),
    Case("two-content-lengths", (ok_head(b"Content-Length: 2", b"Content-Length: 3") + b"abc",)),
    Case("two-content-lengths-one-line", (ok_head(b"Content-Length: 2, 3") + b"abc",)),
    Case(
        "chunked-and-content-length",
        (ok_head(b"Transfer-Encoding: chunked", b"Content-Length: 3") + b"2\r\nok\r\n0\r\n\r\n",),
    ),
    Case("negative-content-length", (ok_head(b"Content-Length: -1") + b"x",)),
    Case("status-99", (ok_head(b"Content-Length: 2", status=b"99 Low") + b"ok",)),
    Case("status-1000", (ok_head(b"Content-Length: 2", status=b"1000 High") + b"ok",)),
    Case("no-response-read-timeout", (HOLD,), read_timeout=0.3),
)

EDGES: Final = (
    # Odd but answerable, or odd and refused: only agreement is asserted.
    Case("transfer-encoding-gzip-chunked", (ok_head(b"Transfer-Encoding: gzip, chunked") + b"2\r\nok\r\n0\r\n\r\n",)),
    Case("transfer-encoding-gzip-only", (ok_head(b"Transfer-Encoding: gzip") + b"abc", CLOSE)),
    Case(
        "transfer-encoding-twice",
        (ok_head(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked") + b"2\r\nok\r\n0\r\n\r\n",),
    ),
    Case("status-099", (ok_head(b"Content-Length: 2", status=b"099 Low") + b"ok",)),
    Case("status-without-reason-or-space", (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",)),
    Case("http-2.0-status-line", (ok_head(b"Content-Length: 2", version=b"HTTP/2.0") + b"ok",)),
    Case("lowercase-http-version", (ok_head(b"Content-Length: 2", version=b"http/1.1") + b"ok",)),
    Case("nul-in-header-value", (ok_head(b"X: a\x00b", b"Content-Length: 2") + b"ok",)),
    Case("obs-text-in-header-value", (ok_head(b"X: caf\xe9", b"Content-Length: 2") + b"ok",)),
    Case("space-before-colon", (ok_head(b"X-A : 1", b"Content-Length: 2") + b"ok",)),
    Case("continuation-as-first-header-line", (ok_head(b" X-A: 1", b"Content-Length: 2") + b"ok",)),
    Case("obs-fold-in-interim-and-final", (
        ok_head(b"Link: </a.css>", b"  rel=preload", status=b"103 Early Hints")
        + ok_head(b"X-Folded: a", b" b", b"Content-Length: 6")
        + b"a\r\n  b",  # a body that looks like a fold stays as it is
    )),
    Case("chunk-missing-crlf", (CHUNKED_HEAD + b"2\r\nokX0\r\n\r\n",)),
    Case("data-after-body", (ok_head(b"Content-Length: 2") + b"okEXTRA",)),
    Case("head-answered-with-a-body", (ok_head(b"Content-Length: 2") + b"ok",), method="HEAD"),
    Case("204-with-a-body", (ok_head(b"Content-Length: 2", status=b"204 No Content") + b"ok",)),
    Case("huge-content-length", (ok_head(b"Content-Length: 99999999999999999999999") + b"ok", CLOSE)),
    Case("bare-lf-line-endings", (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",)),
    Case("duplicate-equal-content-length", (ok_head(b"Content-Length: 2", b"Content-Length: 2") + b"ok",)),
    Case("content-length-list-of-equal-values", (ok_head(b"Content-Length: 2, 2") + b"ok",)),
    Case("space-after-chunk-size", (CHUNKED_HEAD + b"2 \r\nok\r\n0\r\n\r\n",)),
    Case("more-than-max-headers", (ok_head(*MANY, b"X-Header-099: one too many", b"Content-Length: 2") + b"ok",)),
)

# -- where the two transports legitimately differ -------------------------------------------


def response(*headers: tuple[bytes, bytes], body: bytes = b"ok") -> tuple[Any, ...]:
    """The outcome of a ``200 OK`` HTTP/1.1 response."""
    return ("response", 200, headers, body, b"OK", b"HTTP/1.1")


REFUSED: Final = ("raised", httpx.RemoteProtocolError)
LENGTH_2: Final = (b"Content-Length", b"2")

DIFFERENCES: Final[dict[str, tuple[tuple[Any, ...], tuple[Any, ...], str]]] = {
    # In every case below h11 is the more lenient one and NativeTransport
    # (llhttp) refuses with RemoteProtocolError. Refusing never hands over a
    # wrong or partial body and never hangs, and the RFC allows it each time,
    # so NativeTransport keeps refusing; none of these is produced by a
    # conforming server.
    "chunked-and-content-length": (
        REFUSED,
        response((b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")),
        "RFC 9112 §6.3: both framings in one response may be response splitting and 'ought to "
        "be handled as an error'; h11 lets chunked win and even keeps the connection alive.",
    ),
    "bare-lf-line-endings": (
        REFUSED,
        response(LENGTH_2),
        "RFC 9112 §2.2: a recipient MAY take a lone LF as a line end; llhttp does not, "
        "h11 does. Making llhttp lenient here would also relax chunk framing.",
    ),
    "duplicate-equal-content-length": (
        REFUSED,
        response(LENGTH_2),
        "RFC 9110 §8.6: a recipient MAY reject repeated Content-Length values or collapse "
        "equal ones; llhttp rejects (there is no leniency for it), h11 collapses.",
    ),
    "content-length-list-of-equal-values": (
        REFUSED,
        response(LENGTH_2),
        "As above, with the repetition inside one field ('2, 2').",
    ),
    "space-after-chunk-size": (
        REFUSED,
        response((b"Transfer-Encoding", b"chunked")),
        "RFC 9112 §7.1 allows no whitespace between chunk-size and CRLF; h11 tolerates it.",
    ),
    "more-than-max-headers": (
        REFUSED,
        response(*((line.split(b": ", 1)[0], line.split(b": ", 1)[1]) for line in MANY),
                 (b"X-Header-099", b"one too many"), LENGTH_2),
        "NativeTransport caps a head at max_headers=100 fields by default (as http.client; "
        "a constructor argument), so a hostile server cannot make it keep 20,000; h11 counts "
        "only the head's bytes.",
    ),
}
"""Case id → (NativeTransport's outcome, httpx's outcome, why NativeTransport's is right)."""


# -- the server --------------------------------------------------------------------------------


def pieces(data: bytes, seed: int | None) -> Iterator[bytes]:
    """``data`` whole (``seed=None``), or cut into 1..MAX_PIECE byte pieces by ``random.Random(seed)``."""
    if seed is None:
        yield data
        return
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        n = rng.randint(1, MAX_PIECE)
        yield data[i : i + n]
        i += n


class Server:
    """A loopback server in the test's loop: each request on a connection gets ``case``'s script.

    A request for ``/second`` gets a plain kept-alive ``200`` instead (the reuse checks).
    """

    def __init__(self, case: Case, seed: int | None = None) -> None:
        self.case = case
        self.seed = seed
        self.connections = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if head.split(b" ", 2)[1] == b"/second":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
                    await writer.drain()
                elif not await self._play(reader, writer):
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _play(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Play the script; whether the connection stays open for another request."""
        for step in self.case.steps:
            if isinstance(step, bytes):
                for piece in pieces(step, self.seed):
                    writer.write(piece)
                    await writer.drain()
                    if self.seed is not None:
                        for _ in range(3):  # let the client read this piece on its own
                            await asyncio.sleep(0)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Close):
                writer.close()
                return False
            elif isinstance(step, Reset):
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return False
            else:
                with contextlib.suppress(ConnectionError):
                    while await asyncio.wait_for(reader.read(65536), WAIT):
                        pass
                return False
        return True

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), WAIT)


# -- running one request --------------------------------------------------------------------


def request(case: Case, url: str) -> httpx.Request:
    timeout = {"connect": 2, "read": case.read_timeout, "write": 2, "pool": 2}
    return httpx.Request(case.method, url, extensions={"timeout": timeout})


async def outcome(transport: httpx.AsyncBaseTransport, req: httpx.Request) -> tuple[Any, ...]:
    """What a caller sees: ``("response", status, raw headers, body, reason, version)`` or ``("raised", class)``."""
    try:
        response = await asyncio.wait_for(transport.handle_async_request(req), WAIT)
        try:
            await asyncio.wait_for(response.aread(), WAIT)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        return ("raised", type(exc))
    return (
        "response",
        response.status_code,
        tuple(response.headers.raw),
        response.content,
        response.extensions["reason_phrase"],
        response.extensions["http_version"],
    )


@contextlib.asynccontextmanager
async def transports() -> AsyncIterator[tuple[NativeTransport, httpx.AsyncHTTPTransport]]:
    """A fresh pair; both closed afterwards, and no task of theirs (or the servers') left running."""
    native, reference = NativeTransport(), httpx.AsyncHTTPTransport()
    try:
        yield native, reference
    finally:
        await native.aclose()
        await reference.aclose()
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []


async def differential(case: Case, seed: int | None = None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``case`` played to NativeTransport and to httpx's transport: their two outcomes."""
    async with transports() as (native, reference):
        async with Server(case, seed) as server:
            mine = await outcome(native, request(case, server.url()))
        async with Server(case, seed) as server:
            theirs = await outcome(reference, request(case, server.url()))
        pool = native.pool
        assert pool is not None and pool.open_connections == pool.idle_connections
    return mine, theirs


def assert_agree(case: Case, mine: tuple[Any, ...], theirs: tuple[Any, ...]) -> None:
    if case.id in DIFFERENCES:
        expected_mine, expected_theirs, _ = DIFFERENCES[case.id]
        assert (mine, theirs) == (expected_mine, expected_theirs)
    else:
        assert mine == theirs


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", VALID + FAULTS + EDGES, ids=lambda c: c.id)
async def test_same_outcome(case: Case) -> None:
    """Both transports return the same response, or raise the same httpx exception, for the same bytes."""
    mine, theirs = await differential(case)
    assert_agree(case, mine, theirs)
    if case in VALID:
        assert mine[0] == "response"
    elif case in FAULTS:
        assert mine[0] == "raised"


def test_differences_name_cases_of_the_corpus() -> None:
    """Every DIFFERENCES entry names a corpus case and gives its reason."""
    ids = {case.id for case in VALID + FAULTS + EDGES}
    assert ids >= DIFFERENCES.keys()
    assert all(reason for _, _, reason in DIFFERENCES.values())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", VALID, ids=lambda c: c.id)
async def test_same_outcome_in_any_segmentation(case: Case, seed: int) -> None:
    """A valid response cut into random pieces parses as it does whole, in both transports."""
    whole, _ = await differential(case)
    mine, theirs = await differential(case, seed)
    assert_agree(case, mine, theirs)
    assert mine == whole


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.id)
async def test_connection_reuse_after_valid_response(case: Case) -> None:
    """After each valid response, a second request on the same NativeTransport succeeds and leaks no slot."""
    async with transports() as (native, _), Server(case) as server:
        first = await outcome(native, request(case, server.url()))
        assert first[0] == "response"
        second = await outcome(native, request(Case("second", ()), server.url("/second")))
        assert second[:2] == ("response", 200) and second[3] == b"second"
        pool = native.pool
        assert pool is not None and pool.open_connections == pool.idle_connections


@pytest.mark.parametrize("case", FAULTS + EDGES, ids=lambda c: c.id)
async def test_no_leaked_slot_after_fault(case: Case) -> None:
    """After each fault or edge case, NativeTransport's pool counts no connection beyond its idle ones, and still serves."""
    async with transports() as (native, _), Server(case) as server:
        first = await outcome(native, request(case, server.url()))
        assert first[0] == "raised" or case in EDGES
        pool = native.pool
        assert pool is not None and pool.open_connections == pool.idle_connections
        second = await outcome(native, request(Case("second", ()), server.url("/second")))
        assert second[:2] == ("response", 200) and second[3] == b"second"
        assert pool.open_connections == pool.idle_connections


async def test_refused_chunked_and_content_length_closes_the_connection() -> None:
    """NativeTransport refuses chunked+Content-Length and closes that connection; the next request opens a new one."""
    case = next(c for c in FAULTS if c.id == "chunked-and-content-length")
    async with transports() as (native, _), Server(case) as server:
        assert await outcome(native, request(case, server.url())) == REFUSED
        second = await outcome(native, request(Case("second", ()), server.url("/second")))
        assert second[3] == b"second" and server.connections == 2
