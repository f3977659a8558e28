"""The request side of the wire for NativeTransport: its origin, its head, and writing its body.

- :func:`serialize`: an ``httpx.Request`` as the HTTP/1.1 head (origin-form,
  or absolute-form through an HTTP proxy), its body when it is in memory,
  and whether a streamed body is framed chunked;
- :func:`write_body`: a streamed body written to the connection, chunked or as is;
- :func:`drain`: the wait while asyncio has paused writing (the socket's
  buffer is full), bounded by the ``write`` timeout.

:func:`write_body` and :func:`drain` need only what :class:`Writer` lists of
the connection (:class:`~._connection.H1Connection` has it), so this module
does not import the connection's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

import httpx

from .._common import TOKEN, method_error

__all__ = [
    "DEFAULT_PORTS",
    "NO_TIMEOUTS",
    "Origin",
    "Writer",
    "absolute_target",
    "drain",
    "serialize",
    "write_body",
]

Origin = tuple[str, str, int]
"""``(scheme, host, port)``: connections are pooled per origin."""

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
NO_TIMEOUTS: Final[dict[str, Any]] = {}
"""The ``timeout`` extension of a request that has none."""

# Methods already checked, as they go on the wire (a few dozen at most in practice).
_METHODS: dict[str, bytes] = {m: m.encode() for m in ("GET", "HEAD", "POST", "PUT", "DELETE")}
_METHODS_MAX: Final = 64


class Writer(Protocol):
    """What writing a request body needs of its connection."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport | None
    closed: bool
    write_paused: bool
    """asyncio paused writing: the socket's buffer is over its high-water mark."""
    drain_waiter: asyncio.Future[None] | None
    """Set by :func:`drain` while it waits; resumed writing or a lost connection resolves it."""

    @property
    def answered(self) -> bool:
        """Whether the response head, or an error, has arrived."""

    def close(self) -> None:
        """Close the connection."""


def serialize(
    request: httpx.Request, origin: Origin, proxy_headers: bytes | None
) -> tuple[bytes, bytes | None, bool]:
    """The request head, the body when it is in memory, and whether to frame it chunked.

    Args:
        request: the request.
        origin: where it goes.
        proxy_headers: the header lines for an HTTP proxy (``b""`` for none),
            or ``None`` without a proxy; through a proxy an ``http`` request
            carries them and the absolute-form target.

    Raises:
        httpx.LocalProtocolError: a header name or value holds CR, LF or NUL, or
            the method is not an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``).
    """
    url = request.url
    target = url.raw_path
    extra = b""
    if proxy_headers is not None and origin[0] == "http":
        target = absolute_target(url)
        extra = proxy_headers
    raw = request.headers.raw
    method = _METHODS.get(request.method) or _method(request)
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in raw:
        parts += (name, b": ", value, b"\r\n")
    if extra:
        parts.append(extra)
    parts.append(b"\r\n")
    head = b"".join(parts)
    # Each header contributes exactly one CR LF: more means an injected line.
    lines = len(raw) + 2 + (extra.count(b"\n") if extra else 0)
    if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
        raise httpx.LocalProtocolError(
            "Illegal header name or value: CR, LF and NUL are not allowed in headers",
            request=request,
        )
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        try:
            return head, request.content, False
        except httpx.RequestNotRead:  # built as Request(stream=ByteStream(...))
            return head, b"".join(stream), False
    chunked = any(
        name.lower() == b"transfer-encoding" and value.strip().lower() == b"chunked"
        for name, value in raw
    )
    return head, None, chunked


def absolute_target(url: httpx.URL) -> bytes:
    """The absolute-form request target a forward proxy needs (``http://host:port/path?q``)."""
    host = url.raw_host
    if b":" in host:
        host = b"[" + host + b"]"
    port = b":%d" % url.port if url.port else b""
    return b"%b://%b%b%b" % (url.raw_scheme, host, port, url.raw_path)


async def write_body(
    conn: Writer, request: httpx.Request, chunked: bool, timeout: float | None
) -> None:
    """Write ``request``'s streamed body on ``conn``, framing it when it is chunked."""
    write = conn.transport.write  # type: ignore[union-attr]
    stream = request.stream
    iterator: Any = stream if not isinstance(stream, httpx.SyncByteStream) else _aiter(stream)
    async for chunk in iterator:
        if conn.closed:
            break  # the server gave up on us; its answer (if any) is still read
        if not chunk:
            continue
        if chunked:
            write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            write(chunk)
        if conn.write_paused:
            await drain(conn, request, timeout)
    if chunked and not conn.closed:
        write(b"0\r\n\r\n")


async def drain(conn: Writer, request: httpx.Request, timeout: float | None) -> None:
    """Wait until ``conn``'s write buffer drains.

    Raises:
        httpx.WriteTimeout: it did not drain within ``timeout`` (``conn`` is closed).
        httpx.WriteError: ``conn`` closed while the request was written, and no
            answer (nor error) arrived.
    """
    while conn.write_paused and not conn.closed:
        conn.drain_waiter = waiter = conn.loop.create_future()
        try:
            if timeout is None:
                await waiter
            else:
                await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            conn.close()
            raise httpx.WriteTimeout(
                f"The request could not be written within {timeout:g} s", request=request
            ) from None
        finally:
            conn.drain_waiter = None
    if conn.closed and not conn.answered:
        raise httpx.WriteError(
            "The connection closed while the request was written", request=request
        )


def _method(request: httpx.Request) -> bytes:
    """``request``'s method as it goes on the wire, once checked to be an HTTP token."""
    method = request.method
    if not TOKEN.match(method):
        raise method_error(method, request)
    if len(_METHODS) >= _METHODS_MAX:
        _METHODS.clear()
    wire = _METHODS[method] = method.encode("ascii")
    return wire


async def _aiter(stream: httpx.SyncByteStream) -> AsyncIterator[bytes]:
    for chunk in stream:
        yield chunk
