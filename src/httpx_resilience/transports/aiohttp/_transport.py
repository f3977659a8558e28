"""``AiohttpTransport``: its settings, the session's lifecycle, one request in and one response out.

Per request it takes a pool permit, turns the httpx request into
``ClientSession.request`` arguments (headers as given, the body, a cached
``yarl.URL`` and ``aiohttp.ClientTimeout``) and wraps aiohttp's response as an
``httpx.Response``; errors become httpx's through :func:`~._errors.map_exception`,
bodies cross over through :mod:`._streams`. What the adapter keeps exactly as
httpx's own transport does is told in :mod:`httpx_resilience.transports.aiohttp`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import httpx
from yarl import URL as _YarlURL

from ...exceptions import ConfigurationError, InvalidURLError
from .._common import DEFAULT_LIMITS
from .._mocks import MockedSend, patched
from .._url import check_url
from ._checks import check_method, headers_for_aiohttp
from ._connector import FreshConnector
from ._errors import map_exception, unexpected_error
from ._options import (
    DEFAULT_MAX_HEAD_BYTES,
    DEFAULT_MAX_HEADERS,
    head_limits,
    proxy_options,
    ssl_option,
    with_proxy_headers,
)
from ._streams import BodyErrors, Releaser, ResponseStream, request_body

__all__ = ["AiohttpTransport"]

# httpx already sets these (or deliberately leaves them out): aiohttp must not add its own.
_SKIP_AUTO_HEADERS: Final = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_NO_TIMEOUT: Final = aiohttp.ClientTimeout()
_HTTP_11: Final = b"HTTP/1.1"
_URL_CACHE_SIZE: Final = 512
_TIMEOUT_CACHE_SIZE: Final = 64


def _noop() -> None:
    """The pool permit of a transport without a connection limit."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send httpx requests through ``aiohttp`` (HTTP/1.1).

    Use it wherever httpx takes a transport::

        inner = AiohttpTransport(limits=httpx.Limits(max_connections=64))
        client = httpx.AsyncClient(transport=ResilientTransport(inner))
        client = AsyncHTTPClient("https://api.example.com", transport=inner)

    The ``aiohttp.ClientSession`` is created on the first request, inside the
    running event loop, and closed by :meth:`aclose` (a later request opens a
    new one, as httpx's own transport reopens connections). One transport
    serves one event loop.

    Args:
        verify: ``True`` verifies TLS certificates with httpx's default context
            (certifi, ``SSL_CERT_FILE``/``SSL_CERT_DIR``); ``False`` disables
            verification; an :class:`ssl.SSLContext` is used as given; a
            string is a CA bundle path (as httpx accepts).
        limits: ``max_connections`` caps connections in use (``None``: no
            cap); ``keepalive_expiry`` closes idle connections after that many
            seconds (``None``: keep them); ``max_keepalive_connections=0`` or
            ``keepalive_expiry=0`` closes every connection after its response.
        proxy: an HTTP proxy URL (``"http://user:pass@proxy:3128"``) or an
            ``httpx.Proxy`` (its ``auth`` and ``headers`` are sent to the
            proxy); HTTPS targets are tunnelled with ``CONNECT``.
        max_connections_per_host: an extra per-host cap (aiohttp's
            ``limit_per_host``; waiting for it counts as connect time).
        trust_env: read proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``
            (off by default: like httpx's transport, only the client reads them).
        connector_options: extra keyword arguments for ``aiohttp.TCPConnector``
            (``ttl_dns_cache``, ``family``, ``local_addr``, ...).
        max_head_bytes: the longest line of a response head (the status line,
            one header field, a chunk size line), and the most bytes of interim
            (``1xx``) heads before the final one; 64 KiB by default. aiohttp
            bounds lines, not the head as a whole. Past it the request fails
            with ``httpx.RemoteProtocolError``.
        max_headers: the most header fields in a response head (and in its
            trailer section); 100 by default, as ``http.client``.

    Raises:
        ConfigurationError: a SOCKS or otherwise unsupported proxy, a proxy URL
            without a valid host or port, a negative ``max_connections_per_host``,
            or a head limit that is not a whole number in its range.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        max_connections_per_host: int | None = None,
        trust_env: bool = False,
        connector_options: Mapping[str, Any] | None = None,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        max_headers: int = DEFAULT_MAX_HEADERS,
    ) -> None:
        if max_connections_per_host is not None and max_connections_per_host < 0:
            raise ConfigurationError(
                f"max_connections_per_host must be >= 0, got {max_connections_per_host!r}",
                field="max_connections_per_host",
            )
        self.max_head_bytes = _whole("max_head_bytes", max_head_bytes, 1024)
        self.max_headers = _whole("max_headers", max_headers, 1)
        self.verify = verify
        self.limits = limits
        self.max_connections_per_host = max_connections_per_host
        self.trust_env = trust_env
        self._connector_options = dict(connector_options or {})
        self._request_options: dict[str, Any] = proxy_options(proxy)
        self.proxy = self._request_options.get("proxy")
        # aiohttp sends proxy_headers only on a CONNECT (https targets): a plain
        # http request to the proxy carries them among its own headers.
        self._proxy_http_headers: list[tuple[str, str]] = list(
            self._request_options.get("proxy_headers", {}).items()
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: asyncio.Semaphore | None = None
        self._mocked = MockedSend(verify)
        self._urls: dict[str, _YarlURL] = {}
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {}

    # -- lifecycle --------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The ``aiohttp.ClientSession`` in use, or ``None`` before the first request."""
        return self._session

    def _open(self) -> aiohttp.ClientSession:
        """Create the session and its connector in the running loop (first request)."""
        loop = asyncio.get_running_loop()
        limits = self.limits
        max_connections = limits.max_connections
        expiry = limits.keepalive_expiry
        force_close = limits.max_keepalive_connections == 0 or expiry == 0
        connector = FreshConnector(
            limit=max_connections or 0,
            limit_per_host=self.max_connections_per_host or 0,
            keepalive_timeout=None if force_close else expiry,
            force_close=force_close,
            ssl=ssl_option(self.verify),
            max_interim_bytes=self.max_head_bytes,
            **self._connector_options,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            timeout=_NO_TIMEOUT,
            trust_env=self.trust_env,
            requote_redirect_url=False,
            **head_limits(self.max_head_bytes, self.max_headers),
        )
        # aiohttp silently resends an idempotent request once when a kept-alive
        # connection drops; httpx does not, and the retry policy must see every
        # attempt (a fault counted once upstream is one attempt, not two).
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        self._pool = asyncio.Semaphore(max_connections) if max_connections else None
        self._loop = loop
        self._session = session
        return session

    async def aclose(self) -> None:
        """Close the session and every pooled connection (idempotent)."""
        session, self._session = self._session, None
        self._pool = None
        self._loop = None
        await self._mocked.aclose()
        if session is not None:
            await session.close()

    # -- the request ------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the response with its body still to be read.

        Raises:
            httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
            httpx.ReadError, httpx.ReadTimeout, httpx.WriteError,
            httpx.RemoteProtocolError, httpx.ProxyError, httpx.UnsupportedProtocol:
                as httpx's own transport raises them for the same fault.
            httpx.LocalProtocolError: a method or header name that is not a
                token, or a CR, LF or NUL in a header value (the message names
                the header, never its value).
            InvalidURLError: a URL no connection can be made to (see
                :func:`~httpx_resilience.transports._url.check_url`); nothing is sent.
            RuntimeError: the transport is used from a second event loop.
        """
        url = request.url
        scheme = url.scheme
        if scheme != "http" and scheme != "https":
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'."
                if scheme
                else "Request URL is missing an 'http://' or 'https://' protocol.",
                request=request,
            )
        check_url(url)
        if patched():  # respx or pytest-httpx is active: let the mock answer
            return await self._mocked(request)
        session = self._session
        if session is None:
            session = self._open()
        elif self._loop is not asyncio.get_running_loop():
            raise RuntimeError(
                "AiohttpTransport is bound to the event loop it was first used in; "
                "create one transport per event loop (or aclose() it before switching)"
            )
        method = request.method
        check_method(method, request)
        target = self._url(str(url), request)
        ext = request.extensions
        phases: Mapping[str, float | None] | None = ext.get("timeout")
        timeout = self._timeout(phases) if phases else _NO_TIMEOUT

        stream = request.stream
        data: Any
        body_errors: BodyErrors | None = None
        if isinstance(stream, httpx.ByteStream):
            try:
                data = request.content or None
            except httpx.RequestNotRead:  # built as Request(stream=ByteStream(...))
                data = b"".join(stream) or None
        else:
            body_errors = BodyErrors()
            data = request_body(stream, body_errors)
        headers = headers_for_aiohttp(request.headers.raw, body_errors is not None, request)
        if self._proxy_http_headers and scheme == "http":
            headers = with_proxy_headers(headers, self._proxy_http_headers)

        release = await self._acquire(phases, request)
        try:
            response = await session.request(
                method,
                target,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
                server_hostname=ext.get("sni_hostname"),
                **self._request_options,
            )
        except BaseException as exc:
            release()
            if body_errors is not None and exc is body_errors.error:
                raise  # the caller's body iterator failed: its own error, unchanged
            mapped = map_exception(exc, request) or unexpected_error(exc, request)
            if mapped is None:
                raise  # cancellation and other control flow
            if mapped is exc.__cause__:
                raise mapped from None
            raise mapped from exc

        if response.status < 100:  # llhttp takes "099"; httpx's h11 refuses it
            response.close()
            release()
            raise httpx.RemoteProtocolError(
                f"the response status {response.status} is below 100", request=request
            )
        content = response.content
        extensions = {
            "http_version": _HTTP_11 if response.version == (1, 1) else _version(response),
            "reason_phrase": (response.reason or "").encode("ascii", "replace"),
        }
        if content.is_eof() and content.exception() is None:
            # The whole body is already here (small responses arrive with the
            # head): hand it over and free the connection at once.
            try:
                body = content.read_nowait()
            finally:
                response.release()
                release()
            return httpx.Response(
                response.status,
                headers=response.raw_headers,
                stream=httpx.ByteStream(body),
                extensions=extensions,
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=ResponseStream(response, request, release),
            extensions=extensions,
        )

    async def _acquire(
        self, phases: Mapping[str, float | None] | None, request: httpx.Request
    ) -> Releaser:
        """Take a connection permit, waiting at most the pool timeout (``httpx.PoolTimeout``)."""
        pool = self._pool
        if pool is None:
            return _noop
        if not pool.locked():
            await pool.acquire()  # free permit: returns without suspending
            return pool.release
        wait = phases.get("pool") if phases else None
        if wait is None:
            await pool.acquire()
            return pool.release
        try:
            await asyncio.wait_for(pool.acquire(), wait)
        except asyncio.TimeoutError:
            raise httpx.PoolTimeout(
                f"No connection became free within the pool timeout ({wait:g} s; "
                f"max_connections={self.limits.max_connections})",
                request=request,
            ) from None
        return pool.release

    def _url(self, raw: str, request: httpx.Request) -> _YarlURL:
        """httpx URLs are already percent-encoded: parse once, skip re-quoting, cache.

        Credentials in the URL are left out: httpx's client has already made
        them an ``Authorization`` header (aiohttp refuses both together), and
        httpx's transport never sends them itself.
        """
        urls = self._urls
        parsed = urls.get(raw)
        if parsed is None:
            try:
                parsed = _YarlURL(raw, encoded=True)
                if parsed.raw_user is not None or parsed.raw_password is not None:
                    parsed = parsed.with_user(None)
            except (ValueError, TypeError) as exc:  # check_url has refused what yarl does
                raise InvalidURLError(
                    f"the URL cannot be sent: {exc}", method=request.method, url=request.url
                ) from None
            if len(urls) >= _URL_CACHE_SIZE:
                urls.clear()
            urls[raw] = parsed
        return parsed

    def _timeout(self, phases: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        """httpx's per-phase timeouts as an ``aiohttp.ClientTimeout`` (cached per pair).

        ``connect`` bounds DNS, TCP and TLS (aiohttp's ``connect`` and
        ``sock_connect``); ``read`` is the longest wait for any read
        (``sock_read``); ``pool`` is enforced by :meth:`_acquire`. aiohttp
        reads 0 (or less) as "no timeout"; httpx as "time out at once", and
        so does this adapter (a NaN too).
        """
        key = (phases.get("connect"), phases.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) >= _TIMEOUT_CACHE_SIZE:
                self._timeouts.clear()
            connect, read = (_at_once(value) for value in key)
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=connect, sock_connect=connect, sock_read=read
            )
        return timeout

    def __repr__(self) -> str:
        state = "open" if self._session is not None else "idle"
        return (
            f"AiohttpTransport({state}, max_connections={self.limits.max_connections}, "
            f"keepalive_expiry={self.limits.keepalive_expiry}, "
            f"proxy={'yes' if self.proxy else 'no'})"
        )


# -- requests ----------------------------------------------------------------------------


def _at_once(seconds: float | None) -> float | None:
    """A timeout aiohttp would read as none (0, negative, NaN) as the shortest it takes."""
    return seconds if seconds is None or seconds > 0 else 1e-6


def _whole(name: str, value: object, minimum: int) -> int:
    """``value`` when it is a whole number of at least ``minimum``; else ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"AiohttpTransport({name}=...) must be a whole number >= {minimum}, got {value!r}",
            field=name,
        )
    return value


def _version(response: aiohttp.ClientResponse) -> bytes:
    major, minor = response.version or (1, 1)
    return f"HTTP/{major}.{minor}".encode()
