"""Just enough HTTP/1.1 for the chaos server, at the byte level.

Reading a request: :func:`_parse_head` splits the head into method, target,
version and header pairs; :func:`_read_body` reads a body framed by
``Content-Length`` or ``Transfer-Encoding: chunked`` (answering
``Expect: 100-continue``). Both raise :class:`_BadRequest` on garbage.

Raw answers: :func:`_simple_response` builds a whole JSON error response and
:func:`_reset` closes a connection with RST.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from http import HTTPStatus
from typing import Any, Final

from ._records import RecordedHeaders

__all__ = [
    "_HEAD_LIMIT",
    "_REASONS",
    "_BadRequest",
    "_json",
    "_parse_head",
    "_read_body",
    "_reset",
    "_simple_response",
]

_REASONS: Final = {s.value: s.phrase for s in HTTPStatus}
_HEAD_LIMIT: Final = 256 * 1024
_SO_LINGER_RST: Final = struct.pack("ii", 1, 0)


class _BadRequest(Exception):
    """The request cannot be parsed; answer 400 and close."""


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: ``SO_LINGER`` 0 makes the kernel drop the connection at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _SO_LINGER_RST)
    writer.transport.abort()


def _simple_response(status: int, message: str) -> bytes:
    body = _json({"ok": False, "status": status, "error": message})
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("latin-1") + body


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Split a request head into method, target, version and header pairs.

    Raises:
        _BadRequest: when the request line or a header line is malformed.
    """
    lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"malformed request line: {lines[0][:100]!r}")
    method, target, version = parts
    if target.startswith(("http://", "https://")):  # absolute-form, as sent to proxies
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    raw: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(f"malformed header line: {line[:100]!r}")
        raw.append((name, value.strip()))
    return method, target, version, raw


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: RecordedHeaders
) -> bytes:
    """Read the request body framed by ``Transfer-Encoding: chunked`` or ``Content-Length``.

    Raises:
        _BadRequest: on a malformed length or chunk size.
    """
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length_header = headers.get("content-length")
    if not chunked and not length_header:
        return b""
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not chunked:
        try:
            length = int(str(length_header))
        except ValueError:
            raise _BadRequest(f"invalid Content-Length: {length_header!r}") from None
        if length < 0:
            raise _BadRequest(f"invalid Content-Length: {length_header!r}")
        return await reader.readexactly(length) if length else b""
    pieces: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(f"invalid chunk size line: {size_line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers are accepted and ignored
            return b"".join(pieces)
        pieces.append(await reader.readexactly(size))
        await reader.readexactly(2)
