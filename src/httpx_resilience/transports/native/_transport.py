"""``NativeTransport``: HTTP/1.1 over asyncio with httptools' C parser, as an httpx transport.

httpx keeps its API (``httpx.AsyncClient``, auth flows, cookies, redirects,
decoding, :class:`~httpx_resilience.ResilientTransport`); this transport only
moves bytes, and does it with a few attribute writes per callback on top of
asyncio's own socket handling: per request it costs about a third of
aiohttp's client and a tenth of httpcore's at 64 concurrent requests (see
``bench/RESULTS.md``).

What it keeps exactly as httpx's own transport does:

- the request goes out with httpx's headers only, as given (names, order,
  case); a streamed body is framed ``Transfer-Encoding: chunked`` unless the
  request carries a ``Content-Length``;
- the response body is handed over raw, so httpx decodes ``gzip``/``br`` once;
- timeouts come from ``request.extensions["timeout"]``: ``connect`` bounds
  DNS, TCP and TLS (``httpx.ConnectTimeout``), ``read`` is the longest wait for
  any read (``httpx.ReadTimeout``), ``write`` the longest wait for the socket
  to take more of the request (``httpx.WriteTimeout``), ``pool`` the wait for
  a free connection (``httpx.PoolTimeout``);
- faults surface as the httpx exception httpcore raises for the same fault
  (see :mod:`._h1`); a request is never resent by the transport (retrying is
  the pipeline's decision);
- ``limits``: ``max_connections``, ``max_keepalive_connections`` and
  ``keepalive_expiry`` mean what they mean for ``httpx.AsyncHTTPTransport``;
- TLS with httpx's default context (certifi) or the one given; the
  ``sni_hostname`` request extension; HTTP proxies (absolute-form requests for
  ``http://``, a ``CONNECT`` tunnel for ``https://``) with ``httpx.Proxy``'s
  auth and headers.

Differences: HTTP/1.1 only (no HTTP/2), no SOCKS proxies, no ``Upgrade``
(``101``) and no ``network_stream`` extension; 1xx interim responses are
skipped.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, Final

import httpx

try:
    import httptools  # noqa: F401  (the parser _h1 uses; checked here for the hint)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "NativeTransport needs httptools: pip install 'httpx-resilience[fast]'"
    ) from exc

from ...exceptions import ConfigurationError
from .._common import DEFAULT_LIMITS, http_proxy, proxy_header_pairs
from ._connection import BodyStream, H1Connection, Origin
from ._pool import ConnectionPool

__all__ = ["NativeTransport"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_NO_TIMEOUTS: Final[dict[str, Any]] = {}


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

    Raises:
        ConfigurationError: a SOCKS or otherwise unsupported proxy.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        local_address: str | None = None,
        uds: str | None = None,
    ) -> None:
        if uds is not None and (proxy is not None or local_address is not None):
            raise ConfigurationError(
                "uds connects to a local socket: give it without proxy or local_address",
                field="uds",
            )
        self.verify = verify
        self.limits = limits
        self.local_address = local_address
        self.uds = uds
        self.proxy: httpx.Proxy | None = http_proxy(proxy, "NativeTransport")
        pairs = proxy_header_pairs(self.proxy) if self.proxy is not None else []
        self._proxy_headers = b"".join(name + b": " + value + b"\r\n" for name, value in pairs)
        self._ssl: ssl.SSLContext | None = None
        self._pool: ConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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
            RuntimeError: the transport is used from a second event loop.
        """
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
        origin = (scheme, url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, Any] = request.extensions.get("timeout") or _NO_TIMEOUTS
        head, body, chunked = self._serialize(request, origin)
        method = request.method
        conn = await pool.acquire(origin, timeouts, request)
        try:
            status, headers, extensions, content = await conn.exchange(
                request, head, body, chunked, timeouts, head_only=method == "HEAD"
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

    def _serialize(
        self, request: httpx.Request, origin: Origin
    ) -> tuple[bytes, bytes | None, bool]:
        """The request head, the body when it is in memory, and whether to frame it chunked.

        Raises:
            httpx.LocalProtocolError: a header name or value holds CR, LF or NUL.
        """
        url = request.url
        target = url.raw_path
        extra = b""
        if self.proxy is not None and origin[0] == "http":
            target = _absolute_target(url)
            extra = self._proxy_headers
        raw = request.headers.raw
        parts = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
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

    # -- connecting -----------------------------------------------------------------------

    async def _connect(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> H1Connection:
        """Open a connection to ``origin`` (through the proxy when there is one)."""
        loop = asyncio.get_running_loop()
        pool = self._pool
        assert pool is not None
        conn = H1Connection(loop, origin, pool.lost)
        scheme, host, port = origin
        tls = scheme == "https"
        sni = request.extensions.get("sni_hostname") or host
        proxy = self.proxy
        try:
            if self.uds is not None:
                coro = loop.create_unix_connection(
                    lambda: conn,
                    self.uds,
                    ssl=self._ssl_context() if tls else None,
                    server_hostname=sni if tls else None,
                )
                await (coro if timeout is None else asyncio.wait_for(coro, timeout))
            elif proxy is None:
                coro = loop.create_connection(
                    lambda: conn,
                    host,
                    port,
                    ssl=self._ssl_context() if tls else None,
                    server_hostname=sni if tls else None,
                    local_addr=(self.local_address, 0) if self.local_address else None,
                )
                await (coro if timeout is None else asyncio.wait_for(coro, timeout))
            else:
                await _within(self._via_proxy(conn, proxy, origin, sni, request), timeout)
        except asyncio.TimeoutError:
            conn.close()
            raise httpx.ConnectTimeout(
                f"Connecting to {host}:{port} took longer than {timeout:g} s", request=request
            ) from None
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            where = f"the socket {self.uds}" if self.uds is not None else None
            raise httpx.ConnectError(_describe(exc, host, port, where), request=request) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    async def _via_proxy(
        self,
        conn: H1Connection,
        proxy: httpx.Proxy,
        origin: Origin,
        sni: str,
        request: httpx.Request,
    ) -> None:
        """Connect to the proxy; for an ``https`` origin, open a ``CONNECT`` tunnel, then TLS."""
        loop = asyncio.get_running_loop()
        purl = proxy.url
        phost = purl.raw_host.decode("ascii")
        pport = purl.port or _DEFAULT_PORTS.get(purl.scheme, 80)
        try:
            await loop.create_connection(
                lambda: conn,
                phost,
                pport,
                ssl=self._ssl_context() if purl.scheme == "https" else None,
                server_hostname=phost if purl.scheme == "https" else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ProxyError(
                f"Cannot reach the proxy {phost}:{pport}: {_describe(exc, phost, pport)}",
                request=request,
            ) from exc
        scheme, host, port = origin
        if scheme != "https":
            return
        authority = f"{host}:{port}".encode("ascii")
        head = b"CONNECT %b HTTP/1.1\r\nHost: %b\r\n%b\r\n" % (
            authority,
            authority,
            self._proxy_headers,
        )
        status, _, extensions, _ = await conn.exchange(
            request, head, b"", False, _NO_TIMEOUTS, head_only=True
        )
        conn.finish()
        if not 200 <= status < 300:
            raise httpx.ProxyError(
                f"The proxy refused the tunnel to {host}:{port}: {status} "
                f"{extensions['reason_phrase'].decode('latin-1')}",
                request=request,
            )
        transport = await loop.start_tls(
            conn.transport,  # type: ignore[arg-type]
            conn,
            self._ssl_context(),
            server_hostname=sni,
        )
        conn.transport = transport

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


# -- helpers ------------------------------------------------------------------------------


async def _within(coro: Any, timeout: float | None) -> None:
    if timeout is None:
        await coro
    else:
        await asyncio.wait_for(coro, timeout)


def _absolute_target(url: httpx.URL) -> bytes:
    """The absolute-form request target a forward proxy needs (``http://host:port/path?q``)."""
    host = url.raw_host
    if b":" in host:
        host = b"[" + host + b"]"
    port = b":%d" % url.port if url.port else b""
    return b"%b://%b%b%b" % (url.raw_scheme, host, port, url.raw_path)


def _describe(exc: BaseException, host: str, port: int, where: str | None = None) -> str:
    if isinstance(exc, socket.gaierror):
        return f"Cannot resolve {host!r}: {exc}"
    text = str(exc) or type(exc).__name__
    return f"{text} (connecting to {where or f'{host}:{port}'})"
