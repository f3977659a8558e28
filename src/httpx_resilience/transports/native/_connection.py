"""One HTTP/1.1 client connection: an asyncio protocol that writes requests and parses responses.

Parsing is httptools' (llhttp, in C); everything else is a few attribute
writes per callback, which is why :class:`~httpx_resilience.transports.NativeTransport`
costs a fraction of httpcore or aiohttp per request. One request at a time per
connection (no pipelining); the pool in :mod:`._pool` hands connections out.

Faults surface as the ``httpx`` exception httpcore raises for the same fault:

- the peer closes cleanly before the response head → ``RemoteProtocolError``
  ("Server disconnected without sending a response."); before the body is
  complete → ``RemoteProtocolError`` ("peer closed connection ...");
- a reset (``ECONNRESET``) while waiting or reading → ``ReadError``;
- nothing arrives for the read timeout → ``ReadTimeout``; the request cannot
  be written for the write timeout → ``WriteTimeout``;
- a malformed response, or a ``101 Switching Protocols`` answer (no Upgrade
  support) → ``RemoteProtocolError``.

Imported only by :mod:`httpx_resilience.transports.native`, which checks first
that httptools is installed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import httpx
from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

__all__ = ["BodyStream", "H1Connection", "Origin"]

Origin = tuple[str, str, int]
"""``(scheme, host, port)``: connections are pooled per origin."""

_HIGH_WATER: Final = 256 * 1024  # buffered body bytes before reading pauses
_NO_BODY_STATUS: Final = frozenset({204, 304})
_HTTP_VERSIONS: Final = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}
_OBS_FOLD: Final = re.compile(rb"\r\n[ \t]+")


class H1Connection(asyncio.Protocol):
    """An HTTP/1.1 connection to one origin; :meth:`exchange` sends one request.

    Callbacks from the event loop (``data_received`` and the parser's
    ``on_*``) only record what arrived and wake the waiting request; the
    request side (:meth:`exchange`, :class:`BodyStream`) decides.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_drain",
        "_error",
        "_head_data",
        "_head_done",
        "_head_only",
        "_headers",
        "_interim",
        "_keep_alive",
        "_last_read",
        "_on_lost",
        "_parser",
        "_read_paused",
        "_read_timeout",
        "_reason",
        "_request",
        "_status",
        "_timer",
        "_version",
        "_waiter",
        "_write_paused",
        "closed",
        "idle_since",
        "loop",
        "origin",
        "transport",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        on_lost: Callable[[H1Connection], None],
    ) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._on_lost = on_lost
        self._parser = HttpResponseParser(self)
        self._request: httpx.Request | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self._write_paused = False
        self._read_paused = False
        self._reset()

    def _reset(self) -> None:
        """Forget the previous response (a new request begins)."""
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._head_done = False
        self._head_data: list[bytes] = []  # what arrived before the head was whole (obs-fold retry)
        self._complete = False
        self._interim = False
        self._keep_alive = False
        self._head_only = False
        self._version = "1.1"
        self._error: BaseException | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._request is None or self._complete:
            # Bytes nobody asked for (a 408 before closing, garbage): the
            # connection's state is unknown, so it is not used again.
            self.close()
            return
        if self._timer is not None:
            self._last_read = self.loop.time()
        if not self._head_done:
            self._head_data.append(data)
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            self._fail(_upgrade_error(self._request))
        except HttpParserError as exc:
            if not self._head_done and self._reparse_unfolded():
                return
            self._fail(
                httpx.RemoteProtocolError(f"Malformed HTTP response: {exc}", request=self._request)
            )

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost decides what the EOF means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        request = self._request
        if request is not None and not self._complete and self._error is None:
            if not self._head_done:
                self._error = (
                    httpx.ReadError(str(exc) or type(exc).__name__, request=request)
                    if exc is not None
                    else httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    )
                )
            elif exc is None and self._until_close():
                self._complete = True  # the body was delimited by the close
            elif exc is not None:
                self._error = httpx.ReadError(str(exc) or type(exc).__name__, request=request)
            else:
                self._error = httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body",
                    request=request,
                )
            self._wake()
        drain = self._drain
        if drain is not None and not drain.done():
            # As httpcore does after a failed write: stop writing and report
            # what reading the answer finds (the early response, or the reset).
            drain.set_result(None)
        self._on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            # Another message in the same read as the finished answer (an
            # unsolicited 408, pipelined garbage): stop parsing before it
            # overwrites the answer's status and headers. feed_data raises, and
            # data_received closes the connection so it is never reused.
            raise _UnexpectedMessage
        self._headers = []
        self._reason = b""

    def on_status(self, status: bytes) -> None:
        # Called once per received span: a status line split across reads comes in parts.
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:
            return  # a trailer field after a chunked body: dropped, as httpcore drops them
        if value and value[-1] in b" \t":
            # Whitespace after the value is not part of it (RFC 9110 §5.5); h11 strips it too.
            value = value.rstrip(b" \t")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status == 101:
            # llhttp ends the message at this head, so without this the caller
            # would get an empty 101 response on a connection nobody can use.
            self._fail(_upgrade_error(self._request))
            return
        # Refused as h11 refuses them: a status below 100 (llhttp takes "099")
        # would pass for an interim response and the request would wait for a
        # final one until the read timeout; a Transfer-Encoding other than one
        # "chunked" would hand over a body still transfer-coded (or read to the
        # close) as if it were the body.
        problem = (
            f"status code {status}"
            if status < 100
            else "a Transfer-Encoding other than one 'chunked'"
            if _bad_transfer_encoding(self._headers)
            else None
        )
        if problem is not None:
            self._fail(
                httpx.RemoteProtocolError(
                    f"Malformed HTTP response: {problem}", request=self._request
                )
            )
            return
        if status < 200:
            self._interim = True  # 100 Continue, 103 Early Hints: the real answer follows
            return
        self._status = status
        self._head_done = True
        self._head_data = []
        if self._head_only:
            # A HEAD (or CONNECT) answer has no body whatever its Content-Length
            # says; llhttp cannot be told, so a fresh parser takes the next message.
            self._complete = True
            self._keep_alive = self._parser.should_keep_alive()
            self._version = self._parser.get_http_version()
            self._parser = HttpResponseParser(self)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._complete:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._waiter is not None:
            self._wake()
        elif self._buffered > _HIGH_WATER and not self._read_paused and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]  # the reader is slower

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._headers = []
            return
        if self._complete:
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()
        self._wake()

    # -- helpers --------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._complete:
            self._error = error
            self._wake()
        self.close()

    def _reparse_unfolded(self) -> bool:
        """Parse the head received so far again with its obs-folds unfolded; whether that worked.

        llhttp refuses a header continued on the next line (obs-fold) unless
        told to be lenient about every header value (which would also let CR
        and NUL through). RFC 9112 §5.2 says a user agent must replace each
        obs-fold with a space, and h11 does, so a fresh parser is fed the head
        with that done. Later reads go on feeding it raw bytes: another fold
        in them fails again, and the whole head is re-parsed again.
        """
        raw = b"".join(self._head_data)
        unfolded = _unfold(raw)
        if unfolded == raw:
            return False
        self._parser = parser = HttpResponseParser(self)
        self._interim = False
        try:
            parser.feed_data(unfolded)
        except (HttpParserError, HttpParserUpgrade):
            return False
        return True

    def _until_close(self) -> bool:
        """Whether the body is delimited by the connection closing (no length, not chunked)."""
        if self._status in _NO_BODY_STATUS:
            return True
        for name, _ in self._headers:
            lower = name.lower()
            if lower == b"content-length" or lower == b"transfer-encoding":
                return False
        return True

    def _on_read_timer(self) -> None:
        self._timer = None
        timeout = self._read_timeout
        if timeout is None:  # pragma: no cover - the timer is cancelled with the timeout
            return
        deadline = self._last_read + timeout
        if self.loop.time() < deadline:
            self._timer = self.loop.call_at(deadline, self._on_read_timer)
            return
        self._fail(
            httpx.ReadTimeout(f"No data received within {timeout:g} s", request=self._request)
        )

    def _arm_timer(self, timeout: float | None) -> None:
        if timeout is not None and self._timer is None:
            self._read_timeout = timeout
            self._last_read = now = self.loop.time()
            self._timer = self.loop.call_at(now + timeout, self._on_read_timer)

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    async def _wait(self, timeout: float | None) -> None:
        """Wait for the next callback that changes the response (data, end, error)."""
        self._waiter = waiter = self.loop.create_future()
        self._arm_timer(timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            self._cancel_timer()

    async def _drain_writes(self, timeout: float | None) -> None:
        """Wait until the transport's write buffer drains (``WriteTimeout`` after ``timeout``)."""
        while self._write_paused and not self.closed:
            self._drain = drain = self.loop.create_future()
            try:
                if timeout is None:
                    await drain
                else:
                    await asyncio.wait_for(drain, timeout)
            except asyncio.TimeoutError:
                self.close()
                raise httpx.WriteTimeout(
                    f"The request could not be written within {timeout:g} s", request=self._request
                ) from None
            finally:
                self._drain = None
        if self.closed and self._error is None and not self._head_done:
            raise httpx.WriteError(
                "The connection closed while the request was written", request=self._request
            )

    # -- the request side ---------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Whether the last response ended cleanly on a connection kept alive."""
        return self._complete and self._keep_alive and self._error is None and not self.closed

    def close(self) -> None:
        """Close the socket (``connection_lost`` follows from the loop)."""
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    async def exchange(
        self,
        request: httpx.Request,
        head: bytes,
        body: bytes | None,
        chunked: bool,
        timeouts: dict[str, Any],
        *,
        head_only: bool = False,
    ) -> tuple[int, list[tuple[bytes, bytes]], dict[str, Any], bytes | None]:
        """Send one request; return ``(status, headers, extensions, body)``.

        ``body`` in the result is the whole body when it has already arrived
        (small responses come with the head), else ``None``: read it with
        :class:`BodyStream`. The caller closes the connection on any error.
        """
        transport = self.transport
        if transport is None or self.closed:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        self._reset()
        self._head_only = head_only
        self._request = request
        if body is not None:
            if len(body) <= 65536:
                transport.write(head + body)
            else:
                transport.write(head)
                transport.write(body)
        else:
            transport.write(head)
            await self._write_stream(request.stream, chunked, timeouts.get("write"))
        if self._write_paused:
            await self._drain_writes(timeouts.get("write"))
        read_timeout = timeouts.get("read")
        while not self._head_done and self._error is None:
            await self._wait(read_timeout)
        if not self._head_done:
            raise self._error  # type: ignore[misc]
        version = self._version if head_only else self._parser.get_http_version()
        extensions = {
            "http_version": _HTTP_VERSIONS.get(version) or f"HTTP/{version}".encode(),
            "reason_phrase": self._reason,
        }
        if self._complete:
            chunks = self._chunks
            content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._request = None
            return self._status, self._headers, extensions, content
        return self._status, self._headers, extensions, None

    async def _write_stream(self, stream: Any, chunked: bool, timeout: float | None) -> None:
        """Write a streamed request body, framing it when it is chunked."""
        write = self.transport.write  # type: ignore[union-attr]
        iterator: Any = stream if not isinstance(stream, httpx.SyncByteStream) else _aiter(stream)
        async for chunk in iterator:
            if self.closed:
                break  # the server gave up on us; its answer (if any) is still read
            if not chunk:
                continue
            if chunked:
                write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                write(chunk)
            if self._write_paused:
                await self._drain_writes(timeout)
        if chunked and not self.closed:
            write(b"0\r\n\r\n")

    async def read_body(self, timeout: float | None) -> bytes:
        """The next part of the body (``b""`` at its end)."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                self._chunks = []
                self._buffered = 0
                if self._read_paused and self.transport is not None and not self.closed:
                    self._read_paused = False
                    self.transport.resume_reading()
                return data
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait(timeout)

    def finish(self) -> None:
        """The response is done with (read or abandoned)."""
        self._request = None


class BodyStream(httpx.AsyncByteStream):
    """A response body that had not fully arrived with its head, read as it arrives.

    Closing it gives the connection back to the pool when the body was read
    to its end on a kept-alive connection, and closes it otherwise.
    """

    __slots__ = ("_conn", "_done", "_release", "_timeout")

    def __init__(
        self,
        conn: H1Connection,
        timeout: float | None,
        release: Callable[[H1Connection, bool], None],
    ) -> None:
        self._conn = conn
        self._timeout = timeout
        self._release = release
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while chunk := await conn.read_body(self._timeout):
            yield chunk

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        conn = self._conn
        reusable = conn.reusable
        conn.finish()
        if not reusable:
            conn.close()
        self._release(conn, reusable)


class _UnexpectedMessage(Exception):
    """Raised in a parser callback to stop parsing (httptools raises an HttpParserError)."""


def _bad_transfer_encoding(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether ``Transfer-Encoding`` is there but is anything else than one ``chunked``."""
    seen = False
    for name, value in headers:
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            if seen or value.strip().lower() != b"chunked":
                return True
            seen = True
    return False


def _unfold(raw: bytes) -> bytes:
    """``raw`` with each obs-fold (CR LF then spaces or tabs) in its heads replaced by one space.

    Only header lines change: never a status line (a header line that starts
    with a space stays an error), never the body after the final head.
    Interim (1xx) heads before it are unfolded too.
    """
    parts: list[bytes] = []
    pos = 0
    while pos < len(raw):
        first = raw.find(b"\r\n", pos)
        if first < 0:
            break  # still in the status line
        end = raw.find(b"\r\n\r\n", first)
        end = len(raw) if end < 0 else end + 4
        parts += (raw[pos : first + 2], _OBS_FOLD.sub(b" ", raw[first + 2 : end]))
        final = raw[pos + 9 : pos + 10] != b"1"  # "HTTP/1.1 1xx": an interim head
        pos = end
        if final:
            break
    parts.append(raw[pos:])
    return b"".join(parts)


def _upgrade_error(request: httpx.Request | None) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        "The server switched protocols (101 Upgrade), which NativeTransport does not support",
        request=request,
    )


async def _aiter(stream: httpx.SyncByteStream) -> AsyncIterator[bytes]:
    for chunk in stream:
        yield chunk
