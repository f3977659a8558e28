"""aiohttp's exceptions as the httpx exceptions httpx's own transport raises for the same fault.

Imported through the package :mod:`httpx_resilience.transports.aiohttp`,
which checks first that aiohttp is installed (and otherwise raises
``ImportError`` with the install hint).
"""

from __future__ import annotations

import aiohttp
import httpx
from aiohttp import http_exceptions as _http_exceptions

__all__ = ["map_exception", "unexpected_error"]


def map_exception(
    exc: BaseException,
    request: httpx.Request,
    response: aiohttp.ClientResponse | None = None,
) -> BaseException | None:
    """The httpx exception that httpx's own transport raises for the same fault.

    - ``ConnectionTimeoutError`` → ``httpx.ConnectTimeout``
    - ``SocketTimeoutError`` / ``ServerTimeoutError`` (no data within the read
      timeout, before or during the body) → ``httpx.ReadTimeout``
    - ``ClientHttpProxyError`` (the proxy refused ``CONNECT``) → ``httpx.ProxyError``
    - ``ClientConnectorError`` (refused, DNS, TLS handshake or certificate,
      proxy unreachable), ``ServerFingerprintMismatch`` → ``httpx.ConnectError``
    - ``ServerDisconnectedError`` (closed cleanly before the response head)
      → ``httpx.RemoteProtocolError``
    - ``ClientConnectionResetError`` (writing to a closed connection) → ``httpx.WriteError``
    - ``ClientOSError`` (``ECONNRESET`` while reading) and other
      ``ClientConnectionError`` → ``httpx.ReadError``
    - ``ClientPayloadError``: after a reset → ``httpx.ReadError``; a body cut
      short by a clean close or broken chunk framing → ``httpx.RemoteProtocolError``
    - ``ClientResponseError`` / ``HttpProcessingError`` (a malformed response
      head) → ``httpx.RemoteProtocolError``
    - ``InvalidURL`` / ``NonHttpUrlClientError`` → ``httpx.UnsupportedProtocol``
    - an error raised by the request body's own iterator → that error itself
    - any other ``aiohttp.ClientError`` → ``httpx.TransportError``

    Args:
        exc: the exception aiohttp raised.
        request: the request, attached to the httpx exception.
        response: the response whose body was being read, if any (used to tell
            a reset from a clean close).

    Returns:
        The exception to raise, or ``None`` when ``exc`` is not aiohttp's (it
        propagates unchanged: cancellation, errors from the caller's code).
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message, request=request)
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerFingerprintMismatch)):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(
            f"Server disconnected without sending a response ({message})", request=request
        )
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectionError):
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, (OSError, aiohttp.ClientError)):
            return cause  # the request body's own iterator failed: raise its error
        if isinstance(exc, aiohttp.ClientConnectionResetError):
            return httpx.WriteError(message, request=request)
        return httpx.ReadError(message, request=request)
    if isinstance(exc, aiohttp.ClientPayloadError):
        if _was_reset(exc, response):
            return httpx.ReadError(message, request=request)
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, (aiohttp.ClientResponseError, _http_exceptions.HttpProcessingError)):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.TransportError(message, request=request)
    return None


def unexpected_error(
    exc: BaseException, request: httpx.Request, *, reading: bool = False
) -> httpx.TransportError | None:
    """An exception aiohttp or yarl let out bare, as a typed httpx error.

    Sending, aiohttp raises a bare ``ValueError``, ``TypeError``,
    ``UnicodeError`` or ``OverflowError`` for a request it cannot write (the
    transport checks the known causes first, so this is the net under them):
    those become ``httpx.LocalProtocolError`` (nothing was sent, and sending
    again will not help); any other ``Exception`` becomes ``httpx.TransportError``.
    Reading a body (``reading=True``), any ``Exception`` is a response aiohttp
    could not parse: ``httpx.RemoteProtocolError``. Cancellation and other
    ``BaseException`` give ``None``: they propagate.
    """
    if not isinstance(exc, Exception):
        return None
    message = f"aiohttp raised {type(exc).__name__}: {exc}"[:300]
    if reading:
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(exc, (ValueError, TypeError, LookupError, ArithmeticError, AssertionError)):
        return httpx.LocalProtocolError(message, request=request)
    return httpx.TransportError(message, request=request)


def _was_reset(exc: BaseException, response: aiohttp.ClientResponse | None) -> bool:
    """Whether a body error came from a reset connection (httpx: ``ReadError``).

    aiohttp reports both a reset and a clean close mid-body as
    ``ClientPayloadError``; the connection's own error, or the OS error named
    in the message, tells them apart.
    """
    connection = response.connection if response is not None else None
    protocol = connection.protocol if connection is not None else None
    if protocol is not None and isinstance(protocol.exception(), OSError):
        return True
    text = str(exc)
    return "ConnectionResetError" in text or "BrokenPipeError" in text
