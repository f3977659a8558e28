"""The reading half of a NativeTransport connection: bytes in; status, headers, body out, in limits.

:class:`ResponseParser` is the part of :class:`~._connection.H1Connection`
that reads: it feeds what each read delivered to httptools (llhttp, in C) and
records what the parser's callbacks report, a few attribute writes per
callback. The socket, the timers and the request side are the connection's.

Every buffer the peer fills has a limit, checked as the bytes arrive, so a
hostile server is refused as soon as it passes one (never after buffering more):

- the response head (the status line and the header lines, interim ``1xx``
  heads included) is at most ``max_head_bytes``; this also bounds what
  httptools buffers for a header line that does not end, and the reason phrase;
- a head has at most ``max_headers`` header fields, a trailer section as many;
- after the head, at most ``max_head_bytes`` arrive in a row without body data
  (chunk-size lines with their extensions, the trailer section);
- the body itself is handed on as it arrives, and reading pauses while more
  than ``_HIGH_WATER`` bytes of it wait for a reader.

A head with obs-folds (a header value continued on the next line), which
llhttp refuses, is parsed again once, unfolded, and the rest of the head is
collected whole and unfolded before it is parsed (:class:`~._response.FoldedHeads`):
every byte is scanned a fixed number of times, however the head is cut into reads.
"""

from __future__ import annotations

import asyncio
from typing import Final

import httpx
from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from ._response import (
    FoldedHeads,
    UnexpectedMessage,
    framing_too_long,
    has_fold,
    head_problem,
    head_too_large,
    malformed,
    too_many_fields,
    upgrade_error,
)

__all__ = ["ResponseParser"]

_HIGH_WATER: Final = 256 * 1024  # buffered body bytes before reading pauses
_LINE_END: Final = (13, 10)  # CR, LF


class ResponseParser:
    """The reading half of an HTTP/1.1 connection (one response at a time).

    The connection provides :meth:`close` and :meth:`_wake` (its waiting
    request side), and sets ``transport``, ``closed`` and ``_waiter``.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_error",
        "_fields",
        "_folded",
        "_gap",
        "_head_data",
        "_head_done",
        "_head_only",
        "_head_room",
        "_headers",
        "_interim",
        "_keep_alive",
        "_max_head",
        "_max_headers",
        "_parser",
        "_read_paused",
        "_reason",
        "_request",
        "_status",
        "_version",
        "_waiter",
        "closed",
        "transport",
    )

    def __init__(self, max_head_bytes: int, max_headers: int) -> None:
        self._max_head = max_head_bytes
        self._max_headers = max_headers
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._request: httpx.Request | None = None
        self._parser = HttpResponseParser(self)
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
        self._head_data: list[bytes] = []  # the reads before the head was whole (for obs-fold)
        self._folded: FoldedHeads | None = None
        self._head_room = self._max_head  # head bytes still allowed
        self._gap = 0  # bytes since the last body data (framing, trailers)
        self._fields = 0  # trailer fields
        self._complete = False
        self._interim = False
        self._keep_alive = False
        self._head_only = False
        self._version = "1.1"
        self._error: BaseException | None = None

    # -- provided by the connection ------------------------------------------------------

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _wake(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fail(self, error: BaseException) -> None:
        """Record ``error`` for the waiting request (unless the response is done) and close."""
        if self._error is None and not self._complete:
            self._error = error
            self._wake()
        self.close()

    # -- feeding the parser ----------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        """Parse what one read delivered, within the limits."""
        if self._head_done:
            self._feed_body(data)
            return
        room = self._head_room
        if room == self._max_head and data[0] in _LINE_END:
            # llhttp skips empty lines before a status line; h11 (and so httpx) refuses them.
            self._fail(malformed("an empty line before the status line", self._request))
            return
        rest = None
        if len(data) > room:  # the limit falls inside this read: the head must end before it
            data, rest = data[:room], data[room:]
            self._head_room = 0
        else:
            self._head_room = room - len(data)
        if self._folded is not None:
            self._feed_folded(data)
        else:
            self._head_data.append(data)
            try:
                self._parser.feed_data(data)
            except HttpParserUpgrade:
                self._fail(upgrade_error(self._request))
            except HttpParserError as exc:
                self._head_error(exc)
            else:
                # A head's fields are counted once per read (and once per whole head).
                if not self._head_done and len(self._headers) > self._max_headers:
                    self._too_many_fields()
        if rest is None or self._error is not None or self.closed:
            return
        if not self._head_done:
            self._fail(head_too_large(self._max_head, self._request))
            return
        self._after_head(rest)

    def _after_head(self, rest: bytes) -> None:
        """Bytes of the read that completed the final head, after it."""
        if not rest:
            return
        if self._complete:
            self.close()  # more after a whole answer (a HEAD's): the connection is not reused
        else:
            self._feed_body(rest)

    def _head_error(self, exc: HttpParserError) -> None:
        """llhttp refused the head: an obs-fold (parse it again, unfolded) or a malformed head."""
        if self._error is None:
            if not self._head_done and not self._complete:
                raw = b"".join(self._head_data)
                if has_fold(raw):
                    # Parse the head from its start again, unfolded (once per response).
                    self._head_data = []
                    self._folded = FoldedHeads()
                    self._parser = HttpResponseParser(self)
                    self._interim = False
                    self._feed_folded(raw)
                    return
            self._fail(malformed(exc, self._request))
        else:
            self.close()  # a limit stopped the parser; already reported

    def _too_many_fields(self) -> None:
        self._fail(too_many_fields(self._max_headers, self._head_done, self._request))

    def _feed_folded(self, data: bytes) -> None:
        folded = self._folded
        assert folded is not None
        folded.add(data)
        while (head := folded.next_head()) is not None:
            try:
                self._parser.feed_data(head)
            except HttpParserUpgrade:
                self._fail(upgrade_error(self._request))
                return
            except HttpParserError as exc:
                if self._error is None:
                    self._fail(malformed(exc, self._request))
                return
            if self._error is not None or self.closed:
                return
            if self._head_done:
                self._folded = None
                self._after_head(folded.rest())
                return

    def _feed_body(self, data: bytes) -> None:
        self._gap += len(data)
        try:
            self._parser.feed_data(data)
        except HttpParserUpgrade:
            self._fail(upgrade_error(self._request))
            return
        except HttpParserError as exc:
            self._fail(malformed(exc, self._request))
            return
        if self._gap > self._max_head and not self._complete:
            self._fail(framing_too_long(self._max_head, self._request))

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            # Another message in the same read as the finished answer (an
            # unsolicited 408, pipelined garbage): stop parsing before it
            # overwrites the answer's status and headers. feed_data raises, and
            # the connection is closed so it is never reused.
            raise UnexpectedMessage
        self._headers = []
        self._reason = b""

    def on_status(self, status: bytes) -> None:
        # Called once per received span: a status line split across reads comes in parts.
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:
            # A trailer field after a chunked body: dropped, as httpcore drops
            # them, but counted (a head's fields are counted once per read).
            fields = self._fields = self._fields + 1
            if fields > self._max_headers:
                self._too_many_fields()
                raise UnexpectedMessage  # stops the parser
            return
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
        if len(self._headers) > self._max_headers:
            self._too_many_fields()
            return
        problem = head_problem(status, self._reason, self._headers)  # refused as h11 refuses it
        if problem is not None:
            self._fail(malformed(problem, self._request))
            return
        if status < 200:
            self._interim = True  # 100 Continue, 103 Early Hints: the real answer follows
            return
        self._status = status
        self._head_done = True
        self._head_data = []
        self._fields = 0  # trailers are counted on their own
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
        self._gap = 0
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
