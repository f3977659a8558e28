"""Reading a response beyond httptools' parser: the rules for a head, and what each fault becomes.

:class:`~._connection.H1Connection` feeds the bytes to httptools (llhttp, in
C) and records what its callbacks report; the decisions llhttp does not make
are here, as plain functions of what was parsed:

- :func:`head_problem`: a head refused as h11 refuses it;
- :func:`unfold`: the head received so far with its obs-folds unfolded, to be
  parsed again;
- :func:`lost_error`: what the connection closing mid-response means.

Faults surface as the ``httpx`` exception httpcore raises for the same fault:

- the peer closes cleanly before the response head → ``RemoteProtocolError``
  ("Server disconnected without sending a response."); before the body is
  complete → ``RemoteProtocolError`` ("peer closed connection ...");
- a reset (``ECONNRESET``) while waiting or reading → ``ReadError``;
- nothing arrives for the read timeout → ``ReadTimeout``; the request cannot
  be written for the write timeout → ``WriteTimeout`` (both raised by the
  connection's timers);
- a malformed response, or a ``101 Switching Protocols`` answer (no Upgrade
  support) → ``RemoteProtocolError``.
"""

from __future__ import annotations

import re
from typing import Final

import httpx

__all__ = [
    "HTTP_VERSIONS",
    "UnexpectedMessage",
    "head_problem",
    "lost_error",
    "malformed",
    "unfold",
    "upgrade_error",
]

HTTP_VERSIONS: Final = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}
"""httptools' version strings as the ``http_version`` response extension."""

_NO_BODY_STATUS: Final = frozenset({204, 304})
_OBS_FOLD: Final = re.compile(rb"\r\n[ \t]+")


class UnexpectedMessage(Exception):
    """Raised in a parser callback to stop parsing (httptools raises an HttpParserError)."""


def head_problem(status: int, headers: list[tuple[bytes, bytes]]) -> str | None:
    """What is wrong with a response head that h11 refuses, or ``None`` for a good one.

    A status below 100 (llhttp takes "099") would pass for an interim
    response, and the request would wait for a final one until the read
    timeout; a ``Transfer-Encoding`` other than one ``chunked`` would hand
    over a body still transfer-coded (or read to the close) as if it were the
    body.
    """
    if status < 100:
        return f"status code {status}"
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


def unfold(raw: bytes) -> bytes:
    """``raw`` with each obs-fold (CR LF then spaces or tabs) in its heads replaced by one space.

    llhttp refuses a header continued on the next line (obs-fold) unless told
    to be lenient about every header value (which would also let CR and NUL
    through). RFC 9112 §5.2 says a user agent must replace each obs-fold with
    a space, and h11 does, so the connection feeds a fresh parser the head
    with that done. Later reads go on feeding that parser raw bytes: another
    fold in them fails again, and the whole head is unfolded again.

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


def malformed(problem: object, request: httpx.Request | None) -> httpx.RemoteProtocolError:
    """The error for a response llhttp cannot parse, or :func:`head_problem` refuses."""
    return httpx.RemoteProtocolError(f"Malformed HTTP response: {problem}", request=request)


def upgrade_error(request: httpx.Request | None) -> httpx.RemoteProtocolError:
    """The error for a ``101 Switching Protocols`` answer (no Upgrade support)."""
    return httpx.RemoteProtocolError(
        "The server switched protocols (101 Upgrade), which NativeTransport does not support",
        request=request,
    )
