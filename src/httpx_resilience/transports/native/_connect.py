"""Opening a connection for NativeTransport: TCP or a Unix socket, TLS, or through an HTTP proxy.

:func:`open_connection` connects an :class:`~._connection.H1Connection` (the
asyncio protocol) to its origin, and turns what goes wrong into the httpx
error httpcore raises for it: ``ConnectTimeout``, ``ConnectError``, or
``ProxyError`` when the proxy cannot be reached or refuses the ``CONNECT``
tunnel an ``https`` origin needs.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any

import httpx

from ._connection import H1Connection
from ._request import DEFAULT_PORTS, NO_TIMEOUTS

__all__ = ["open_connection"]


async def open_connection(
    conn: H1Connection,
    timeout: float | None,
    request: httpx.Request,
    *,
    uds: str | None,
    local_address: str | None,
    proxy: httpx.Proxy | None,
    proxy_headers: bytes,
    ssl_context: Callable[[], ssl.SSLContext],
) -> None:
    """Connect ``conn`` to its origin (through ``proxy`` when there is one); close it on failure.

    Args:
        conn: the protocol the socket is for; its ``origin`` says where to.
        timeout: the ``connect`` timeout (DNS, TCP, TLS, the proxy tunnel).
        request: the request that needs the connection (for errors and ``sni_hostname``).
        uds: a Unix socket path to connect to instead of the origin's host and port.
        local_address: the local IP address to connect from.
        proxy: the HTTP proxy, if any.
        proxy_headers: the header lines sent to the proxy with ``CONNECT``.
        ssl_context: the TLS context, made on first use.

    Raises:
        httpx.ConnectTimeout, httpx.ConnectError, httpx.ProxyError. A setting
        refused before any socket call (a bad ``sni_hostname``) is a ConnectError too.
    """
    loop = conn.loop
    scheme, host, port = conn.origin
    tls = scheme == "https"
    sni = request.extensions.get("sni_hostname") or host
    try:
        if uds is not None:
            coro = loop.create_unix_connection(
                lambda: conn,
                uds,
                ssl=ssl_context() if tls else None,
                server_hostname=sni if tls else None,
            )
            await (coro if timeout is None else asyncio.wait_for(coro, timeout))
        elif proxy is None:
            coro = loop.create_connection(
                lambda: conn,
                host,
                port,
                ssl=ssl_context() if tls else None,
                server_hostname=sni if tls else None,
                local_addr=(local_address, 0) if local_address else None,
            )
            await (coro if timeout is None else asyncio.wait_for(coro, timeout))
        else:
            await _within(
                _via_proxy(conn, proxy, proxy_headers, sni, request, ssl_context), timeout
            )
    except asyncio.TimeoutError:
        conn.close()
        raise httpx.ConnectTimeout(
            f"Connecting to {host}:{port} took longer than {timeout:g} s", request=request
        ) from None
    except (OSError, ssl.SSLError) as exc:
        conn.close()
        where = f"the socket {uds}" if uds is not None else None
        raise httpx.ConnectError(_describe(exc, host, port, where), request=request) from exc
    except ValueError as exc:
        # Refused before any socket call: a TLS server name the IDNA codec or
        # ssl rejects (the sni_hostname extension), a NUL in the socket path.
        conn.close()
        raise httpx.ConnectError(
            f"Cannot connect to {host}:{port}: {exc} (check the sni_hostname extension "
            "and the uds path)",
            request=request,
        ) from exc
    except BaseException:
        conn.close()
        raise


async def _via_proxy(
    conn: H1Connection,
    proxy: httpx.Proxy,
    proxy_headers: bytes,
    sni: str,
    request: httpx.Request,
    ssl_context: Callable[[], ssl.SSLContext],
) -> None:
    """Connect to the proxy; for an ``https`` origin, open a ``CONNECT`` tunnel, then TLS."""
    loop = conn.loop
    purl = proxy.url
    phost = purl.raw_host.decode("ascii")
    pport = purl.port or DEFAULT_PORTS.get(purl.scheme, 80)
    try:
        await loop.create_connection(
            lambda: conn,
            phost,
            pport,
            ssl=ssl_context() if purl.scheme == "https" else None,
            server_hostname=phost if purl.scheme == "https" else None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise httpx.ProxyError(
            f"Cannot reach the proxy {phost}:{pport}: {_describe(exc, phost, pport)}",
            request=request,
        ) from exc
    scheme, host, port = conn.origin
    if scheme != "https":
        return
    authority = f"{host}:{port}".encode("ascii")
    head = b"CONNECT %b HTTP/1.1\r\nHost: %b\r\n%b\r\n" % (authority, authority, proxy_headers)
    status, _, extensions, _ = await conn.exchange(
        request, head, b"", False, NO_TIMEOUTS, head_only=True
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
        ssl_context(),
        server_hostname=sni,
    )
    conn.transport = transport


async def _within(coro: Any, timeout: float | None) -> None:
    if timeout is None:
        await coro
    else:
        await asyncio.wait_for(coro, timeout)


def _describe(exc: BaseException, host: str, port: int, where: str | None = None) -> str:
    if isinstance(exc, socket.gaierror):
        return f"Cannot resolve {host!r}: {exc}"
    text = str(exc) or type(exc).__name__
    return f"{text} (connecting to {where or f'{host}:{port}'})"
