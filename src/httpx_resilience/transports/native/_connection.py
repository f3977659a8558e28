"""One HTTP/1.1 client connection: an asyncio protocol that writes requests and parses responses.

Parsing is httptools' (llhttp, in C), fed within limits by
:class:`~._parse.ResponseParser`, the reading half this class extends; everything
else is a few attribute writes per callback, which is why
:class:`~httpx_resilience.transports.NativeTransport` costs a fraction of
httpcore or aiohttp per request. One request at a time per connection (no
pipelining). The rules beyond llhttp's (and the httpx error for each fault) are
in :mod:`._response`; writing a streamed body in :mod:`._request`.

Before an idle connection carries another request, :meth:`H1Connection.usable`
asks the kernel (one ``poll`` with a zero timeout) whether anything arrived on
it meanwhile: an EOF, a reset or unsolicited bytes all mean the server is done
with it, even when the event loop has not run since to report it.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Any, Final

import httpx

from ._parse import ResponseParser
from ._request import Origin, drain, write_body
from ._response import HTTP_VERSIONS, RequestNotSent, lost_error

__all__ = ["H1Connection"]

_HAS_POLL: Final = hasattr(select, "poll")


class H1Connection(ResponseParser, asyncio.Protocol):
    """An HTTP/1.1 connection to one origin; :meth:`exchange` sends one request.

    Callbacks from the event loop (``data_received`` and the parser's
    ``on_*``) only record what arrived and wake the waiting request; the
    request side (:meth:`exchange`, :class:`BodyStream`) decides.
    """

    __slots__ = (
        "_last_read",
        "_on_lost",
        "_read_timeout",
        "_readable",
        "_timer",
        "drain_waiter",
        "idle_since",
        "loop",
        "origin",
        "write_paused",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        on_lost: Callable[[H1Connection], None],
        max_head_bytes: int,
        max_headers: int,
    ) -> None:
        super().__init__(max_head_bytes, max_headers)
        self.loop = loop
        self.origin = origin
        self.idle_since = 0.0
        self._on_lost = on_lost
        # readable(0): what arrived on the idle socket (empty: nothing), for usable()
        self._readable: Callable[[int], Any] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout: float | None = None
        self._last_read = 0.0
        self.write_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            fd = sock.fileno()
            if _HAS_POLL:
                poll = select.poll()
                poll.register(fd, select.POLLIN)
                self._readable = poll.poll
            else:  # pragma: no cover - Windows has no poll(); select() takes sockets there
                self._readable = lambda timeout: select.select((fd,), (), (), timeout)[0]

    def data_received(self, data: bytes) -> None:
        if self._request is None or self._complete:
            # Bytes nobody asked for (a 408 before closing, garbage): the
            # connection's state is unknown, so it is not used again.
            self.close()
            return
        if self._timer is not None:
            self._last_read = self.loop.time()
        self._received(data)

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

    # -- helpers --------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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

    def usable(self) -> bool:
        """Whether this idle connection can carry another request (closes it when not).

        Not when it is closed or closing, nor when its socket is readable: an
        idle connection has nothing to read unless the server closed it (EOF),
        reset it, or sent bytes nobody asked for, which the event loop may not
        have reported yet (it runs after this request's task yields).
        """
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        readable = self._readable
        if readable is not None and readable(0):
            self.close()
            return False
        return True

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

        Raises:
            RequestNotSent: no byte of the request left; the connection was
                found closing, or the first write failed at once (the server
                had reset it), so nothing of the request was accepted.
        """
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            raise RequestNotSent(request)
        self._reset()
        self._head_only = head_only
        self._request = request
        rest = body
        if body is not None and len(body) <= 65536:
            transport.write(head + body)
            rest = None
        else:
            transport.write(head)
        if transport.is_closing():
            # The socket refused the first write outright (asyncio buffers
            # what it cannot send yet, so a transport closing now means the
            # send failed with nothing accepted), and no body byte was taken.
            raise RequestNotSent(request)
        if rest is not None:
            transport.write(rest)
        elif body is None:
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
