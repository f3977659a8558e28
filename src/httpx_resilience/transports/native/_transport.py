"""``NativeTransport``: its settings, the pool's lifecycle, one request in and one response out.

Per request it reads the URL's origin, has :func:`~._request.serialize` build
the head, takes a connection from :class:`~._pool.ConnectionPool`, runs the
exchange on it (:class:`~._connection.H1Connection`) and wraps what came back
as an ``httpx.Response``. New connections are opened by
:func:`~._connect.open_connection` for the pool. What the transport keeps
exactly as httpx's does is told in :mod:`httpx_resilience.transports.native`.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Final

import httpx

from ...exceptions import ConfigurationError, InvalidURLError
from .. import _mocks
from .._common import DEFAULT_LIMITS, http_proxy, proxy_header_pairs
from .._url import check_url
from ._body import BodyStream
from ._connect import open_connection
from ._connection import H1Connection
from ._pool import ConnectionPool
from ._request import DEFAULT_PORTS, NO_TIMEOUTS, Origin, serialize
from ._response import RequestNotSent

__all__ = ["DEFAULT_MAX_HEADERS", "DEFAULT_MAX_HEAD_BYTES", "NativeTransport"]

DEFAULT_MAX_HEAD_BYTES: Final = 64 * 1024
"""The largest response head NativeTransport accepts by default (``http.client``'s line limit)."""
DEFAULT_MAX_HEADERS: Final = 100
"""The most header fields in a response head by default (``http.client``'s)."""


class NativeTransport(httpx.AsyncBaseTransport):
    """Send httpx requests over HTTP/1.1 with asyncio and httptools.

    Use it wherever httpx takes a transport::

        inner = NativeTransport(limits=httpx.Limits(max_connections=64))
        client = httpx.AsyncClient(transport=ResilientTransport(inner))
        client = AsyncHTTPClient("https://api.example.com", transport=inner)

    The pool is created on the first request, inside the running event loop,
    and closed by :meth:`aclose` (a later request opens a new one). One
    transport serves one event loop.

    Args:
        verify: ``True`` verifies TLS certificates with httpx's default context
            (certifi, ``SSL_CERT_FILE``/``SSL_CERT_DIR``); ``False`` disables
            verification; an :class:`ssl.SSLContext` is used as given; a
            string is a CA bundle path.
        limits: ``max_connections`` caps open connections (``None``: no cap);
            ``max_keepalive_connections`` caps idle ones (``0``: close every
            connection after its response); ``keepalive_expiry`` retires a
            connection idle that long (``None``: keep it).
        proxy: an HTTP proxy URL (``"http://user:pass@proxy:3128"``) or an
            ``httpx.Proxy`` (its ``auth`` and ``headers`` are sent to the
            proxy); HTTPS targets are tunnelled with ``CONNECT``.
        local_address: the local IP address to connect from.
        uds: a Unix domain socket path to connect to instead of the URL's host
            and port (a Docker or sidecar socket); the URL still gives the
            ``Host`` header, and ``https`` still means TLS over the socket.
        max_head_bytes: the largest response head accepted (status line and
            headers, interim ``1xx`` heads included), and the most body framing
            accepted in a row without body data (chunk extensions, trailers);
            64 KiB by default, as Python's ``http.client``. A longer one fails
            the request with ``httpx.RemoteProtocolError`` as soon as it passes
            the limit.
        max_headers: the most header fields in a response head (and in its
            trailer section); 100 by default, as ``http.client``.

    Raises:
        ConfigurationError: a SOCKS or otherwise unsupported proxy, a proxy URL
            without a valid host or port, or a limit that is not a whole number
            in its range.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        local_address: str | None = None,
        uds: str | None = None,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        if uds is not None and (proxy is not None or local_address is not None):
            raise ConfigurationError(
                "uds connects to a local socket: give it without proxy or local_address",
                field="uds",
            )
        self.max_head_bytes = _whole("max_head_bytes", max_head_bytes, 1024)
        self.max_headers = _whole("max_headers", max_headers, 1)
        self.verify = verify
        self.limits = limits
        self.local_address = local_address
        self.uds = uds
        self.proxy: httpx.Proxy | None = http_proxy(proxy, "NativeTransport")
        if self.proxy is not None:
            try:
                check_url(self.proxy.url)
            except InvalidURLError as exc:
                raise ConfigurationError(f"proxy: {exc}", field="proxy") from None
        # The header lines sent to the proxy, or None without a proxy (serialize() tells by it).
        self._proxy_headers: bytes | None = None
        if self.proxy is not None:
            pairs = proxy_header_pairs(self.proxy)
            self._proxy_headers = b"".join(name + b": " + value + b"\r\n" for name, value in pairs)
        self._ssl: ssl.SSLContext | None = None
        self._pool: ConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Sends through httpx's own transport while a mocking library has patched it.
        self._mocked = _mocks.MockedSend(verify=verify)

    # -- lifecycle --------------------------------------------------------------------

    def _open(self) -> ConnectionPool:
        loop = asyncio.get_running_loop()
        limits = self.limits
        self._pool = ConnectionPool(
            loop,
            self._connect,
            max_connections=limits.max_connections,
            max_keepalive_connections=(
                0 if limits.keepalive_expiry == 0 else limits.max_keepalive_connections
            ),
            keepalive_expiry=limits.keepalive_expiry,
        )
        self._loop = loop
        return self._pool

    async def aclose(self) -> None:
        """Close every connection (idempotent); a later request opens a new pool."""
        pool, self._pool = self._pool, None
        self._loop = None
        if pool is not None:
            pool.close()
        await self._mocked.aclose()

    @property
    def pool(self) -> ConnectionPool | None:
        """The connection pool, or ``None`` before the first request."""
        return self._pool

    # -- the request --------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the response (its body read when it came with the head).

        Raises:
            httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
            httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout,
            httpx.RemoteProtocolError, httpx.LocalProtocolError, httpx.ProxyError,
            httpx.UnsupportedProtocol: as httpx's own transport raises them.
            InvalidURLError: (an ``httpx.InvalidURL``) the URL has no host, a
                port outside 1-65535, or a host that is not a valid DNS name.
            RuntimeError: the transport is used from a second event loop.
        """
        if _mocks.patched():
            return await self._mocked(request)
        check_url(request.url)
        pool = self._pool
        if pool is None:
            pool = self._open()
        elif self._loop is not asyncio.get_running_loop():
            raise RuntimeError(
                "NativeTransport is bound to the event loop it was first used in; "
                "create one transport per event loop (or aclose() it before switching)"
            )
        url = request.url
        scheme = url.scheme
        if scheme != "http" and scheme != "https":
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'."
                if scheme
                else "Request URL is missing an 'http://' or 'https://' protocol.",
                request=request,
            )
        origin = (scheme, url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[scheme])
        timeouts: dict[str, Any] = request.extensions.get("timeout") or NO_TIMEOUTS
        head, body, chunked = serialize(request, origin, self._proxy_headers)
        method = request.method
        head_only = method == "HEAD"
        conn = await pool.acquire(origin, timeouts, request)
        try:
            status, headers, extensions, content = await conn.exchange(
                request, head, body, chunked, timeouts, head_only=head_only
            )
        except RequestNotSent:
            # The kept-alive connection was gone before any byte of the
            # request left: the server cannot have seen it, so it goes again
            # (whatever its method) on a new connection, once.
            conn.finish()
            pool.release(conn, False)
            conn = await pool.acquire(origin, timeouts, request, fresh=True)
            status, headers, extensions, content = await _exchange(
                pool, conn, request, head, body, chunked, timeouts, head_only
            )
        except BaseException:
            # Cancelled, timed out or failed mid-exchange: the connection's
            # state is unknown, so it is closed, never reused.
            conn.finish()
            pool.release(conn, False)
            raise
        if content is not None:
            reusable = conn.reusable
            if not reusable:
                conn.close()
            pool.release(conn, reusable)
            return httpx.Response(
                status, headers=headers, stream=httpx.ByteStream(content), extensions=extensions
            )
        return httpx.Response(
            status,
            headers=headers,
            stream=BodyStream(conn, timeouts.get("read"), pool.release),
            extensions=extensions,
        )

    # -- connecting -----------------------------------------------------------------------

    async def _connect(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> H1Connection:
        """Open a connection to ``origin`` (through the proxy when there is one)."""
        pool = self._pool
        assert pool is not None
        conn = H1Connection(
            asyncio.get_running_loop(), origin, pool.lost, self.max_head_bytes, self.max_headers
        )
        await open_connection(
            conn,
            timeout,
            request,
            uds=self.uds,
            local_address=self.local_address,
            proxy=self.proxy,
            proxy_headers=self._proxy_headers or b"",
            ssl_context=self._ssl_context,
        )
        return conn

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = self._ssl
        if ctx is None:
            verify = self.verify
            ctx = (
                verify
                if isinstance(verify, ssl.SSLContext)
                else httpx.create_ssl_context(verify=verify)
            )
            if not isinstance(verify, ssl.SSLContext):
                ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return ctx

    def __repr__(self) -> str:
        pool = self._pool
        state = (
            f"open, {pool.open_connections} connections ({pool.idle_connections} idle)"
            if pool is not None
            else "idle"
        )
        return (
            f"NativeTransport({state}, max_connections={self.limits.max_connections}, "
            f"keepalive_expiry={self.limits.keepalive_expiry}, "
            f"proxy={'yes' if self.proxy else 'no'})"
        )


def _whole(name: str, value: object, minimum: int) -> int:
    """``value`` when it is a whole number of at least ``minimum``; else ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"NativeTransport({name}=...) must be a whole number >= {minimum}, got {value!r}",
            field=name,
        )
    return value


async def _exchange(
    pool: ConnectionPool,
    conn: H1Connection,
    request: httpx.Request,
    head: bytes,
    body: bytes | None,
    chunked: bool,
    timeouts: dict[str, Any],
    head_only: bool,
) -> tuple[int, list[tuple[bytes, bytes]], dict[str, Any], bytes | None]:
    """:meth:`H1Connection.exchange`; on any failure the connection is closed and released."""
    try:
        return await conn.exchange(request, head, body, chunked, timeouts, head_only=head_only)
    except BaseException:
        conn.finish()
        pool.release(conn, False)
        raise
