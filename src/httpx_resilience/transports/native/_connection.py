"""One HTTP/1.1 client connection: an asyncio protocol that writes requests and parses responses.

Parsing is httptools' (llhttp, in C); everything else is a few attribute
writes per callback, which is why :class:`~httpx_resilience.transports.NativeTransport`
costs a fraction of httpcore or aiohttp per request. One request at a time per
connection (no pipelining). The rules beyond llhttp's (and the httpx error for
each fault) are in :mod:`._response`; writing a streamed body in :mod:`._request`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import httpx
from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from ._request import Origin, drain, write_body
from ._response import (
    HTTP_VERSIONS,
    UnexpectedMessage,
    head_problem,
    lost_error,
    malformed,
    unfold,
    upgrade_error,
)

__all__ = ["H1Connection"]

_HIGH_WATER: Final = 256 * 1024  # buffered body bytes before reading pauses


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
        "closed",
        "drain_waiter",
        "idle_since",
        "loop",
        "origin",
        "transport",
        "write_paused",
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
        self.drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self.write_paused = False
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
            self._fail(upgrade_error(self._request))
        except HttpParserError as exc:
            if not self._head_done and self._reparse_unfolded():
                return
            self._fail(malformed(exc, self._request))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost decides what the EOF means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        request = self._request
        if request is not None and not self._complete and self._error is None:
            error = lost_error(request, exc, self._head_done, self._status, self._headers)
            if error is None:
                self._complete = True  # the body was delimited by the close
            else:
                self._error = error
            self._wake()
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            # As httpcore does after a failed write: stop writing and report
            # what reading the answer finds (the early response, or the reset).
            waiter.set_result(None)
        self._on_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            # Another message in the same read as the finished answer (an
            # unsolicited 408, pipelined garbage): stop parsing before it
            # overwrites the answer's status and headers. feed_data raises, and
            # data_received closes the connection so it is never reused.
            raise UnexpectedMessage
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
            self._fail(upgrade_error(self._request))
            return
        problem = head_problem(status, self._headers)  # refused as h11 refuses it
        if problem is not None:
            self._fail(malformed(problem, self._request))
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
        """Parse the head so far again with its obs-folds unfolded; whether that worked."""
        raw = b"".join(self._head_data)
        unfolded = unfold(raw)
        if unfolded == raw:
            return False
        self._parser = parser = HttpResponseParser(self)
        self._interim = False
        try:
            parser.feed_data(unfolded)
        except (HttpParserError, HttpParserUpgrade):
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

    # -- the request side ---------------------------------------------------------------

    @property
    def answered(self) -> bool:
        """Whether the response head, or an error, has arrived."""
        return self._error is not None or self._head_done

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
            await write_body(self, request, chunked, timeouts.get("write"))
        if self.write_paused:
            await drain(self, request, timeouts.get("write"))
        read_timeout = timeouts.get("read")
        while not self._head_done and self._error is None:
            await self._wait(read_timeout)
        if not self._head_done:
            raise self._error  # type: ignore[misc]
        version = self._version if head_only else self._parser.get_http_version()
        extensions = {
            "http_version": HTTP_VERSIONS.get(version) or f"HTTP/{version}".encode(),
            "reason_phrase": self._reason,
        }
        if self._complete:
            chunks = self._chunks
            content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._request = None
            return self._status, self._headers, extensions, content
        return self._status, self._headers, extensions, None

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

