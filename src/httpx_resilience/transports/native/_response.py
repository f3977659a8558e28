"""Reading a response beyond httptools' parser: the rules for a head, and what each fault becomes.

:class:`~._connection.H1Connection` feeds the bytes to httptools (llhttp, in
C) and records what its callbacks report; the decisions llhttp does not make
are here, as plain functions of what was parsed:

- :func:`head_problem`: a head refused as h11 refuses it;
- :func:`has_fold` and :class:`FoldedHeads`: a head with obs-folds, unfolded
  to be parsed again;
- :func:`head_too_large`, :func:`too_many_fields`, :func:`framing_too_long`:
  the errors for a response past one of the limits (see :mod:`._parse`);
- :func:`lost_error`: what the connection closing mid-response means.

Faults surface as the ``httpx`` exception httpcore raises for the same fault:

- the peer closes cleanly before the response head → ``RemoteProtocolError``
  ("Server disconnected without sending a response."); before the body is
  complete → ``RemoteProtocolError`` ("peer closed connection ...");
- a reset (``ECONNRESET``) while waiting or reading → ``ReadError``;
- nothing arrives for the read timeout → ``ReadTimeout``; the request cannot
  be written for the write timeout → ``WriteTimeout`` (both raised by the
  connection's timers);
- the kept-alive connection turns out closed before any byte of the request
  left → :class:`RequestNotSent` (a ``RemoteProtocolError``), which the
  transport answers by sending the request again on a new connection;
- a malformed response, a response past a limit, or a ``101 Switching
  Protocols`` answer (no Upgrade support) → ``RemoteProtocolError``.
"""

from __future__ import annotations

import re
from typing import Final

import httpx

__all__ = [
    "HTTP_VERSIONS",
    "FoldedHeads",
    "RequestNotSent",
    "UnexpectedMessage",
    "framing_too_long",
    "has_fold",
    "head_problem",
    "head_too_large",
    "lost_error",
    "malformed",
    "too_many_fields",
    "upgrade_error",
]

HTTP_VERSIONS: Final = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}
"""httptools' version strings as the ``http_version`` response extension."""

_NO_BODY_STATUS: Final = frozenset({204, 304})
_OBS_FOLD: Final = re.compile(rb"\r\n[ \t]+")
# Refused in a reason phrase as h11 refuses them (llhttp lets them through).
_CONTROL: Final = re.compile(rb"[\x00\x0b\x0c]")
_USUAL_REASONS: Final = frozenset(
    {b"OK", b"Created", b"Accepted", b"No Content", b"Not Modified", b"Found", b"Not Found", b""}
)


class UnexpectedMessage(Exception):
    """Raised in a parser callback to stop parsing (httptools raises an HttpParserError)."""


def head_problem(status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> str | None:
    """What is wrong with a response head that h11 refuses, or ``None`` for a good one.

    A status below 100 (llhttp takes "099") would pass for an interim
    response, and the request would wait for a final one until the read
    timeout; NUL, VT or FF in the reason phrase (llhttp lets them through)
    is no reason phrase (RFC 9112 §4); a ``Transfer-Encoding``
    other than one ``chunked`` would hand over a body still transfer-coded (or
    read to the close) as if it were the body.
    """
    if status < 100:
        return f"status code {status}"
    if reason not in _USUAL_REASONS and _CONTROL.search(reason):
        return f"a NUL, VT or FF in the reason phrase {reason[:40]!r}"
    seen = False
    for name, value in headers:
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            if seen or value.strip().lower() != b"chunked":
                return "a Transfer-Encoding other than one 'chunked'"
            seen = True
    return None


def lost_error(
    request: httpx.Request,
    exc: BaseException | None,
    head_done: bool,
    status: int,
    headers: list[tuple[bytes, bytes]],
) -> httpx.TransportError | None:
    """The error for a response in flight when its connection closed; ``None``: it is complete.

    Args:
        request: the request the response answers.
        exc: the error the connection closed with (``None``: a clean close).
        head_done: whether the final response head had arrived.
        status: its status code (when ``head_done``).
        headers: its headers (when ``head_done``).
    """
    if exc is not None:
        return httpx.ReadError(str(exc) or type(exc).__name__, request=request)
    if not head_done:
        return httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if _delimited_by_close(status, headers):
        return None
    return httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body", request=request
    )


def _delimited_by_close(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the body is delimited by the connection closing (no length, not chunked)."""
    if status in _NO_BODY_STATUS:
        return True
    for name, _ in headers:
        lower = name.lower()
        if lower == b"content-length" or lower == b"transfer-encoding":
            return False
    return True


def has_fold(raw: bytes) -> bool:
    """Whether ``raw`` (the start of a response) has an obs-fold after its first line.

    llhttp refuses a header continued on the next line (obs-fold) unless told
    to be lenient about every header value (which would also let CR and NUL
    through). RFC 9112 §5.2 says a user agent must replace each obs-fold with
    a space, and h11 does, so after a parse error the connection looks for one,
    and if there is one parses the heads again through :class:`FoldedHeads`.
    """
    first = raw.find(b"\r\n")
    return first >= 0 and _OBS_FOLD.search(raw, first + 2) is not None


class FoldedHeads:
    """Response heads collected whole and handed out unfolded, in one pass over the bytes.

    Each obs-fold (CR LF then spaces or tabs) in a head's header lines becomes
    one space; the status line never changes (a header line that starts with
    a space right after it stays an error). The search for a head's end goes
    on from where the last one stopped, so a head cut into many reads is still
    scanned once. What follows the final head (the body) is left as it came:
    :meth:`rest`. The caller bounds the bytes added (the head limit).
    """

    __slots__ = ("_buf", "_scan", "_start")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._start = 0  # where the next head begins
        self._scan = 0  # where the search for its end goes on

    def add(self, data: bytes) -> None:
        """Append what a read delivered."""
        self._buf += data

    def next_head(self) -> bytes | None:
        """The next whole head, unfolded; ``None`` until its end has arrived."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n", max(self._scan, self._start))
        if end < 0:
            self._scan = max(len(buf) - 3, self._start)
            return None
        start, end = self._start, end + 4
        self._start = self._scan = end
        first = buf.find(b"\r\n", start) + 2
        return bytes(buf[start:first]) + _OBS_FOLD.sub(b" ", bytes(buf[first:end]))

    def rest(self) -> bytes:
        """What came after the last head handed out."""
        return bytes(self._buf[self._start :])


def malformed(problem: object, request: httpx.Request | None) -> httpx.RemoteProtocolError:
    """The error for a response llhttp cannot parse, or :func:`head_problem` refuses."""
    return httpx.RemoteProtocolError(f"Malformed HTTP response: {problem}", request=request)


def upgrade_error(request: httpx.Request | None) -> httpx.RemoteProtocolError:
    """The error for a ``101 Switching Protocols`` answer (no Upgrade support)."""
    return httpx.RemoteProtocolError(
        "The server switched protocols (101 Upgrade), which NativeTransport does not support",
        request=request,
    )


def head_too_large(limit: int, request: httpx.Request | None) -> httpx.RemoteProtocolError:
    """The error for a response head still not over after ``limit`` bytes."""
    return httpx.RemoteProtocolError(
        f"The response head exceeds max_head_bytes={limit} bytes (the status line and "
        "headers; raise NativeTransport(max_head_bytes=...) if this server's are that large)",
        request=request,
    )


def too_many_fields(
    limit: int, trailers: bool, request: httpx.Request | None
) -> httpx.RemoteProtocolError:
    """The error for a head (or a trailer section) of more than ``limit`` fields."""
    where = "trailer section" if trailers else "head"
    return httpx.RemoteProtocolError(
        f"The response {where} has more than max_headers={limit} fields "
        "(raise NativeTransport(max_headers=...) if this server sends that many)",
        request=request,
    )


def framing_too_long(limit: int, request: httpx.Request | None) -> httpx.RemoteProtocolError:
    """The error for more than ``limit`` bytes of body framing in a row (no body data)."""
    return httpx.RemoteProtocolError(
        f"The response body sent more than max_head_bytes={limit} bytes without body data "
        "(a chunk-size line with its extensions, or the trailer section, that long)",
        request=request,
    )


class RequestNotSent(httpx.RemoteProtocolError):
    """No byte of the request left: its kept-alive connection was found closed first.

    The transport sends such a request again, once, on a new connection,
    whatever its method (the server cannot have seen it); raised to the
    caller, it reads as httpcore's error for a connection closed before the
    response.
    """

    def __init__(self, request: httpx.Request) -> None:
        super().__init__("Server disconnected without sending a response.", request=request)
