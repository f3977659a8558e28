"""The pipeline against hostile inputs and upstreams, over real loopback sockets.

Each test runs over the three inner transports ("httpx", "native", "aiohttp"):

* request bodies that cannot be sent twice (a pipe, an object with only
  ``read()``) are never re-sent empty; seekable files are re-sent whole;
* a ``Retry-After`` far beyond ``retry_max_delay`` does not stall the limiter;
* every wait (limiter permits for hedges, the bulkhead queue) ends at the
  total deadline and nothing is sent after it;
* a response body is capped (``max_response_bytes``), even an endless one;
* a URL no connection can be made to fails typed before any policy runs.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    Bulkhead,
    ClientConfig,
    HedgingPolicy,
    InvalidRequestError,
    InvalidURLError,
    RateLimitError,
    RequestNotReplayableError,
    RequestTimeoutError,
    ResilientTransport,
    ResponseTooLargeError,
    RetryExhaustedError,
    TokenBucketRateLimiter,
)
from httpx_resilience.testing import ChaosServer

KINDS = ("httpx", "native", "aiohttp")
MiB = 1024 * 1024
DATA = b"0123456789abcdef" * 4096  # 64 KiB, recognisable in a multipart body


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport under test."""
    return str(request.param)


def config(kind: str, **kw: Any) -> ClientConfig:
    base: dict[str, Any] = {
        "timeout": 5.0,
        "retry_backoff_factor": 0.01,
        "retry_max_delay": 0.05,
        "retry_jitter": "none",
        "transport": kind,
    }
    return ClientConfig(**{**base, **kw})


# -- bodies that cannot be sent twice ----------------------------------------------------


class ReadOnly:
    """A file-like object with ``read()`` and nothing else: it cannot be rewound."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buf.read(size)


def pipe_with(data: bytes) -> Any:
    """The read end of a pipe holding ``data`` (the write end closed)."""
    r, w = os.pipe()
    os.write(w, data)  # 64 KiB fits the default pipe buffer
    os.close(w)
    return os.fdopen(r, "rb")


def non_seekable(source: str) -> Any:
    return pipe_with(DATA) if source == "pipe" else ReadOnly(DATA)


async def test_a_seekable_file_is_resent_in_full(
    kind: str, chaos_server: ChaosServer, tmp_path: Path
) -> None:
    """503 then 200: the retry sends the whole file again (httpx's encoder reads it from 0)."""
    chaos_server.route("/up", statuses=[503, 200])
    path = tmp_path / "upload.bin"
    path.write_bytes(DATA)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind)) as client:
        with path.open("rb") as f:
            r = await client.put("/up", files={"file": ("upload.bin", f)})
    assert r.status_code == 200 and r.attempts == 2
    bodies = [rec.body for rec in chaos_server.requests("/up")]
    assert len(bodies) == 2 and all(DATA in b for b in bodies)


@pytest.mark.parametrize("source", ["pipe", "read_only"])
async def test_a_non_seekable_file_is_never_resent_empty(
    kind: str, source: str, chaos_server: ChaosServer
) -> None:
    """503 with a retry due: RequestNotReplayableError, and the server only ever got the whole part."""
    chaos_server.route("/up", statuses=[503, 200])
    async with AsyncHTTPClient(chaos_server.url, config=config(kind)) as client:
        with pytest.raises(RequestNotReplayableError) as info:
            await client.put("/up", files={"file": ("data.bin", non_seekable(source))})
    assert "cannot be sent again" in str(info.value)
    seen = chaos_server.requests("/up")
    assert chaos_server.count("/up") == 1 and len(seen) == 1
    assert DATA in seen[0].body  # the first attempt sent it whole; no empty part ever


async def test_a_pipe_upload_is_sent_whole(kind: str, chaos_server: ChaosServer) -> None:
    """A pipe has no size on disk: its part goes chunked, not cut to a Content-Length of 0."""
    chaos_server.route("/up", status=200)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind)) as client:
        r = await client.put("/up", files={"file": ("data.bin", pipe_with(DATA))})
        again = await client.get("/up")  # the connection is still sound after it
    assert r.status_code == 200 and again.status_code == 200
    assert DATA in chaos_server.requests("/up")[0].body


async def test_plain_httpx_does_not_resend_a_read_only_file(
    kind: str, chaos_server: ChaosServer
) -> None:
    """Under plain httpx.AsyncClient too: the pipeline refuses the retry."""
    chaos_server.route("/up", statuses=[503, 200])
    transport = ResilientTransport(kind, config=config(kind))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(RequestNotReplayableError):
            await http.put(chaos_server.url_for("/up"), files={"file": ("d.bin", ReadOnly(DATA))})
    assert chaos_server.count("/up") == 1 and DATA in chaos_server.requests("/up")[0].body


async def test_a_file_body_is_not_hedged(kind: str, chaos_server: ChaosServer) -> None:
    """Hedged copies would share one file (a copy after the first reads it empty): not hedged."""
    chaos_server.route("/up", latency=0.3)
    hedging = HedgingPolicy(0.02, methods=frozenset({"PUT"}))
    async with AsyncHTTPClient(chaos_server.url, config=config(kind), hedging=hedging) as client:
        r = await client.put("/up", files={"file": ("data.bin", ReadOnly(DATA))})
        assert r.status_code == 200 and chaos_server.count("/up") == 1
        hedged = await client.put("/up", content=b"in memory")  # a bytes body still is
    assert hedged.status_code == 200
    bodies = [rec.body for rec in chaos_server.requests("/up")]
    assert DATA in bodies[0] and bodies[1:] == [b"in memory"] * 2


@pytest.mark.parametrize(
    "content",
    [iter([b"a", b"b"]), (b for b in [b"a"]), io.StringIO("text"), [b"a", b"b"]],
    ids=["iterator", "generator", "text-file", "list"],
)
async def test_a_sync_iterable_body_is_refused_before_sending(
    kind: str, content: Any, chaos_server: ChaosServer
) -> None:
    """A sync iterator or file as content= cannot be sent by an async client: a typed error."""
    async with AsyncHTTPClient(chaos_server.url, config=config(kind)) as client:
        with pytest.raises(InvalidRequestError, match="content must be bytes"):
            await client.put("/up", content=content)
        r = await client.put("/up", content=bytearray(b"bytes-like"))  # converted, sent
    assert r.status_code == 200
    assert [rec.body for rec in chaos_server.requests("/up")] == [b"bytes-like"]


# -- a Retry-After far too long ------------------------------------------------------------

# The retry loop pauses the limiter after its decision: clamped to max_delay, and
# not at all when the Retry-After ends the retries (retry_after_too_long).



async def test_a_huge_retry_after_does_not_pause_the_limiter(
    kind: str, chaos_server: ChaosServer
) -> None:
    """Retry-After: 99999999 ends the retries; the global limiter is not paused for 3 years."""
    chaos_server.route("/busy", status=503, retry_after=99999999)
    limiter = TokenBucketRateLimiter(rate=1000, burst=10)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind), rate_limiter=limiter) as c:
        with pytest.raises(RetryExhaustedError, match="retry_after_too_long"):
            await c.get("/busy")
        assert limiter.paused_for == 0
        t0 = time.monotonic()
        r = await c.get("/other")  # another path (with a global limiter: any host) goes at once
    assert r.status_code == 200 and time.monotonic() - t0 < 2.0


async def test_a_retry_after_pause_is_clamped_to_max_delay(
    kind: str, chaos_server: ChaosServer
) -> None:
    """A final 429 (no retry left, or a POST) pauses the limiter at most retry_max_delay."""
    chaos_server.route("/limited", status=429, retry_after=99999999)
    limiter = TokenBucketRateLimiter(rate=1000, burst=10)
    cfg = config(kind, retry_attempts=0, retry_max_delay=0.5)
    async with AsyncHTTPClient(chaos_server.url, config=cfg, rate_limiter=limiter) as c:
        with pytest.raises(RateLimitError):
            await c.get("/limited")
        assert 0 < limiter.paused_for <= 0.5
        await asyncio.sleep(0.6)
        with pytest.raises(RateLimitError):
            await c.post("/limited", json={})  # final at once: POST is not retried on a status
        assert 0 < limiter.paused_for <= 0.5


# -- every wait ends at the deadline -----------------------------------------------------


async def test_hedges_wait_for_permits_only_until_the_deadline(
    kind: str, chaos_server: ChaosServer
) -> None:
    """Permits slower than the deadline: the request ends at the deadline, nothing sent after it."""
    chaos_server.route("/slow", latency=2.0)
    total = 0.4
    overshoots = []
    for _ in range(3):  # the best of three: a loaded machine may delay one wake-up
        chaos_server.reset()
        chaos_server.route("/slow", latency=2.0)
        limiter = TokenBucketRateLimiter(rate=0.5, burst=1)  # one permit per 2 s
        cfg = config(kind, timeout=total, total_timeout=total)
        hedging = HedgingPolicy(0.05, max_hedges=2)
        async with AsyncHTTPClient(
            chaos_server.url, config=cfg, rate_limiter=limiter, hedging=hedging
        ) as c:
            t0 = time.monotonic()
            with pytest.raises(RequestTimeoutError) as info:
                await c.get("/slow")
            elapsed = time.monotonic() - t0
            await asyncio.sleep(0.3)  # a late hedge would show up now
        assert info.value.phase == "total"
        assert elapsed < total + 0.5, elapsed  # before the fix: 4.5 s
        assert chaos_server.count("/slow") == 1  # the first attempt only
        assert all(rec.at <= t0 + total for rec in chaos_server.requests("/slow"))
        overshoots.append(elapsed - total)
        if elapsed < total + 0.05:
            break
    assert min(overshoots) < 0.05, overshoots


async def test_the_bulkhead_queue_counts_against_the_deadline(
    kind: str, chaos_server: ChaosServer
) -> None:
    """A request queued for a bulkhead slot gives up at its deadline; it is never sent."""
    bulkhead = Bulkhead(1, max_queue=4)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind), bulkhead=bulkhead) as c:
        await bulkhead.acquire()  # the only slot is taken, for longer than the deadline
        t0 = time.monotonic()
        with pytest.raises(RequestTimeoutError, match="bulkhead slot") as info:
            await c.get("/queued", extensions={"resilience": {"total_timeout": 0.2}})
        elapsed = time.monotonic() - t0
        assert bulkhead.queued == 0  # it left the queue
        bulkhead.release()
        assert (await c.get("/queued")).status_code == 200  # the slot still works
    assert info.value.phase == "total" and elapsed < 0.7, elapsed  # before: waited for the slot
    assert chaos_server.count("/queued") == 1 and bulkhead.in_flight == 0


# -- response size cap --------------------------------------------------------------------


class EndlessServer:
    """A raw HTTP/1.1 server answering every request with a body that never ends.

    ``mode`` is ``"chunked"`` (chunk after chunk) or ``"close"`` (no length:
    the body runs until the connection closes). It counts what it sent and
    notes when the client hung up; it stops by itself after ``stop_after`` bytes.
    """

    def __init__(self, mode: str, stop_after: int = 256 * MiB) -> None:
        self.mode = mode
        self.stop_after = stop_after
        self.sent = 0
        self.requests = 0
        self.hung_up = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EndlessServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            framing = b"Transfer-Encoding: chunked\r\n" if self.mode == "chunked" else b""
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" + framing + b"\r\n")
            piece = b"x" * 65536
            chunk = b"10000\r\n" + piece + b"\r\n" if self.mode == "chunked" else piece
            while self.sent < self.stop_after:
                writer.write(chunk)
                self.sent += len(piece)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.hung_up.set()
            writer.close()


@pytest.fixture(params=["chunked", "close"])
async def endless(request: pytest.FixtureRequest) -> AsyncIterator[EndlessServer]:
    async with EndlessServer(str(request.param)) as server:
        yield server


async def test_an_endless_body_is_cut_at_the_cap(kind: str, endless: EndlessServer) -> None:
    """The default path: reading stops once the cap is passed, the connection is closed, no retry."""
    cfg = config(kind, max_response_bytes=1 * MiB)
    async with AsyncHTTPClient(endless.url, config=cfg) as c:
        t0 = time.monotonic()
        with pytest.raises(ResponseTooLargeError) as info:
            await c.get("/feed")
        elapsed = time.monotonic() - t0
        await asyncio.wait_for(endless.hung_up.wait(), 5)
    err = info.value
    assert err.limit == MiB and MiB < err.received <= MiB + 256 * 1024
    assert "max_response_bytes=1048576" in str(err) and "Raise the cap" in str(err)
    assert isinstance(err, httpx.RequestError)
    assert endless.requests == 1  # final: not retried
    assert endless.sent < 64 * MiB and elapsed < 5, (endless.sent, elapsed)


async def test_the_cap_applies_off_the_lean_path_and_under_plain_httpx(
    kind: str, endless: EndlessServer
) -> None:
    """Through httpx.AsyncClient (redirects on), and plain httpx over ResilientTransport."""
    cfg = config(kind, max_response_bytes=MiB, follow_redirects=True)
    async with AsyncHTTPClient(endless.url, config=cfg) as c:
        with pytest.raises(ResponseTooLargeError):
            await c.get("/feed")
    transport = ResilientTransport(kind, config=config(kind, max_response_bytes=MiB))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(ResponseTooLargeError) as info:
            await http.get(endless.url + "/feed")
        assert info.value.limit == MiB
        small = {"resilience": {"max_response_bytes": 65536}}
        with pytest.raises(ResponseTooLargeError) as info:
            await http.get(endless.url + "/feed", extensions=small)
        assert info.value.limit == 65536
    assert endless.requests == 3


async def test_the_cap_per_request_and_streams_are_the_callers(
    kind: str, chaos_server: ChaosServer
) -> None:
    """max_response_bytes= on a request overrides the config; a stream is not capped."""
    chaos_server.route("/big", body_size=3 * MiB)
    async with AsyncHTTPClient(chaos_server.url, config=config(kind, max_response_bytes=MiB)) as c:
        with pytest.raises(ResponseTooLargeError):
            await c.get("/big")
        r = await c.get("/big", max_response_bytes=None)
        assert len(r.content) == 3 * MiB
        r = await c.get("/big", max_response_bytes=4 * MiB)
        assert len(r.content) == 3 * MiB
        with pytest.raises(ResponseTooLargeError) as info:
            await c.get("/big", max_response_bytes=65536)
        assert info.value.limit == 65536
        with pytest.raises(InvalidRequestError, match="max_response_bytes"):
            await c.get("/big", max_response_bytes=0)
        async with c.stream("GET", "/big") as s:
            assert len(await s.aread()) == 3 * MiB


async def test_the_cap_counts_decoded_bytes(kind: str, chaos_server: ChaosServer) -> None:
    """A small gzip body that inflates past the cap is stopped while it is decoded."""
    bomb = gzip.compress(b"\0" * 16 * MiB)
    assert len(bomb) < 64 * 1024
    chaos_server.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    async with AsyncHTTPClient(chaos_server.url, config=config(kind, max_response_bytes=MiB)) as c:
        with pytest.raises(ResponseTooLargeError) as info:
            await c.get("/bomb")
        assert info.value.received > MiB
        r = await c.get("/bomb", max_response_bytes=None)
        assert len(r.content) == 16 * MiB
    assert chaos_server.count("/bomb") == 2


# -- URLs no connection can be made to ------------------------------------------------------

BAD_URLS = [
    "http://127.0.0.1:0/x",
    "http://127.0.0.1:99999/x",
    "http://" + "a" * 64 + ".example/x",
    "http://xn--a.example/x",
    "http://bad host/x",
]


@pytest.mark.parametrize("url", BAD_URLS, ids=["port-0", "port-99999", "long-label", "bad-idna", "space"])
async def test_a_bad_url_fails_typed_before_any_policy(kind: str, url: str) -> None:
    """InvalidURLError (also httpx.InvalidURL) before the limiter or bulkhead is touched."""
    limiter = TokenBucketRateLimiter(rate=0.001, burst=1)
    bulkhead = Bulkhead(1)
    async with AsyncHTTPClient(
        config=config(kind), rate_limiter=limiter, bulkhead=bulkhead
    ) as c:
        with pytest.raises(InvalidRequestError) as info:
            await c.get(url)
    assert isinstance(info.value, (InvalidURLError, InvalidRequestError))
    transport = ResilientTransport(kind, config=config(kind), rate_limiter=limiter, bulkhead=bulkhead)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as http:
        try:
            request = http.build_request("GET", url)
        except (httpx.InvalidURL, UnicodeError):
            pass  # httpx refuses this one itself while building it
        else:
            with pytest.raises(InvalidURLError):
                await http.send(request)
    assert limiter.tokens == 1 and bulkhead.in_flight == 0
