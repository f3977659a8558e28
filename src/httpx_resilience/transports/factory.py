"""Pick the inner transport by name (httpx, native, aiohttp) or the best one installed.

``"httpx"`` is ``httpx.AsyncHTTPTransport`` (HTTP/1.1 and HTTP/2, SOCKS with
``httpx[socks]``); ``"native"`` is :class:`~httpx_resilience.transports.NativeTransport`
(HTTP/1.1 over asyncio with httptools' parser, the cheapest per request, needs
the ``fast`` extra); ``"aiohttp"`` is :class:`~httpx_resilience.transports.AiohttpTransport`
(HTTP/1.1, needs the ``aiohttp`` extra); ``"auto"`` takes native, then aiohttp,
whichever is installed first, when neither HTTP/2 nor a SOCKS proxy is asked
for, and httpx's own otherwise.
"""

from __future__ import annotations

import importlib.util
import ssl
from typing import TYPE_CHECKING, Literal, get_args

import httpx

from ..exceptions import ConfigurationError
from ._common import DEFAULT_LIMITS

if TYPE_CHECKING:
    from ..config import ClientConfig

__all__ = [
    "TransportKind",
    "aiohttp_available",
    "default_sync_transport",
    "default_transport",
    "make_transport",
    "native_available",
]

TransportKind = Literal["httpx", "native", "aiohttp", "auto"]
"""The inner transport to build: ``"httpx"``, ``"native"``, ``"aiohttp"`` or ``"auto"``."""

_KINDS: tuple[str, ...] = get_args(TransportKind)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-removed module
        return False


def aiohttp_available() -> bool:
    """Whether ``aiohttp`` can be imported (without importing it)."""
    return _installed("aiohttp")


def native_available() -> bool:
    """Whether ``httptools`` (what :class:`NativeTransport` parses with) can be imported."""
    return _installed("httptools")


def make_transport(
    kind: TransportKind = "auto",
    *,
    verify: ssl.SSLContext | str | bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    http2: bool = False,
    proxy: str | httpx.URL | httpx.Proxy | None = None,
) -> httpx.AsyncBaseTransport:
    """Build an inner transport.

    Args:
        kind: ``"httpx"`` (``httpx.AsyncHTTPTransport``), ``"native"``
            (:class:`~httpx_resilience.transports.NativeTransport`), ``"aiohttp"``
            (:class:`~httpx_resilience.transports.AiohttpTransport`) or
            ``"auto"`` (with ``http2`` off and no SOCKS proxy: native when
            httptools is installed, else aiohttp when installed; else httpx).
        verify: TLS verification: ``True``, ``False``, an ``ssl.SSLContext``
            or a CA bundle path.
        limits: connection pool limits.
        http2: enable HTTP/2 (httpx only; needs ``httpx[http2]``).
        proxy: an HTTP(S) proxy URL or ``httpx.Proxy``.

    Raises:
        ConfigurationError: an unknown ``kind``, or ``http2=True`` with ``"native"``
            or ``"aiohttp"``.
        ImportError: ``"native"`` without httptools or ``"aiohttp"`` without
            aiohttp installed (with the install hint).
    """
    if kind not in _KINDS:
        raise ConfigurationError(
            f"transport must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}",
            field="transport",
        )
    if kind == "auto":
        kind = "httpx" if http2 or _socks(proxy) else (
            "native" if native_available() else "aiohttp" if aiohttp_available() else "httpx"
        )
    if kind != "httpx" and http2:
        raise ConfigurationError(
            f"the {kind} transport speaks HTTP/1.1 only; use transport='httpx' "
            "(or 'auto') for http2=True",
            field="http2",
        )
    if kind == "native":
        from .native import NativeTransport

        return NativeTransport(verify=verify, limits=limits, proxy=proxy)
    if kind == "aiohttp":
        from .aiohttp import AiohttpTransport

        return AiohttpTransport(verify=verify, limits=limits, proxy=proxy)
    return httpx.AsyncHTTPTransport(verify=verify, limits=limits, http2=http2, proxy=proxy)


def _socks(proxy: str | httpx.URL | httpx.Proxy | None) -> bool:
    if proxy is None:
        return False
    try:
        url = proxy.url if isinstance(proxy, httpx.Proxy) else httpx.URL(proxy)
    except (httpx.InvalidURL, TypeError):
        return False  # the transport that takes it names the problem (ConfigurationError)
    return url.scheme not in ("http", "https")


def default_transport(
    config: ClientConfig | None = None, *, kind: TransportKind | None = None
) -> httpx.AsyncBaseTransport:
    """The inner transport for ``config``: its pool limits, TLS and HTTP/2 settings.

    Args:
        config: a :class:`~httpx_resilience.ClientConfig` (defaults when omitted).
        kind: which transport; ``None`` reads ``config.transport`` when the
            config has that field, else ``"httpx"``.

    Raises:
        ConfigurationError, ImportError: as :func:`make_transport`.
    """
    if config is None:
        from ..config import ClientConfig

        config = ClientConfig()
    chosen: TransportKind = (
        kind if kind is not None else getattr(config, "transport", None) or "httpx"
    )
    return make_transport(chosen, verify=config.verify_ssl, http2=config.http2,
                          limits=_limits(config))


def default_sync_transport(config: ClientConfig) -> httpx.HTTPTransport:
    """The sync path's inner transport for ``config``: httpx's ``httpx.HTTPTransport``.

    The same pool limits, TLS and HTTP/2 settings as :func:`default_transport`
    gives the async path (httpx's is the only sync HTTP stack here: a name
    such as ``"native"`` picks the async inner only).
    """
    return httpx.HTTPTransport(verify=config.verify_ssl, http2=config.http2,
                               limits=_limits(config))


def _limits(config: ClientConfig) -> httpx.Limits:
    """The pool limits a config asks for."""
    return httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.max_keepalive_connections,
        keepalive_expiry=config.keepalive_expiry,
    )
