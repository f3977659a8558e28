"""Pick the inner transport by name: httpx's own, the aiohttp one, or whichever is installed.

``"httpx"`` is ``httpx.AsyncHTTPTransport`` (HTTP/1.1 and HTTP/2, SOCKS with
``httpx[socks]``); ``"aiohttp"`` is :class:`~httpx_resilience.transports.AiohttpTransport`
(HTTP/1.1, several times cheaper per request, needs the ``aiohttp`` extra);
``"auto"`` takes aiohttp when it is installed and HTTP/2 is not asked for.
"""

from __future__ import annotations

import importlib.util
import ssl
from typing import TYPE_CHECKING, Literal, get_args

import httpx

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..config import ClientConfig

__all__ = ["TransportKind", "aiohttp_available", "default_transport", "make_transport"]

TransportKind = Literal["httpx", "aiohttp", "auto"]
"""The inner transport to build: ``"httpx"``, ``"aiohttp"`` or ``"auto"``."""

_KINDS: tuple[str, ...] = get_args(TransportKind)
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def aiohttp_available() -> bool:
    """Whether ``aiohttp`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("aiohttp") is not None
    except (ImportError, ValueError):  # a blocked or half-removed module
        return False


def make_transport(
    kind: TransportKind = "auto",
    *,
    verify: ssl.SSLContext | str | bool = True,
    limits: httpx.Limits = _DEFAULT_LIMITS,
    http2: bool = False,
    proxy: str | httpx.URL | httpx.Proxy | None = None,
) -> httpx.AsyncBaseTransport:
    """Build an inner transport.

    Args:
        kind: ``"httpx"`` (``httpx.AsyncHTTPTransport``), ``"aiohttp"``
            (:class:`~httpx_resilience.transports.AiohttpTransport`) or
            ``"auto"`` (aiohttp when installed and ``http2`` is off, else httpx).
        verify: TLS verification: ``True``, ``False``, an ``ssl.SSLContext``
            or a CA bundle path.
        limits: connection pool limits.
        http2: enable HTTP/2 (httpx only; needs ``httpx[http2]``).
        proxy: an HTTP(S) proxy URL or ``httpx.Proxy``.

    Raises:
        ConfigurationError: an unknown ``kind``, or ``http2=True`` with ``"aiohttp"``.
        ImportError: ``"aiohttp"`` without aiohttp installed (with the install hint).
    """
    if kind not in _KINDS:
        raise ConfigurationError(
            f"transport must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}",
            field="transport",
        )
    if kind == "auto":
        kind = "aiohttp" if not http2 and aiohttp_available() else "httpx"
    if kind == "aiohttp":
        if http2:
            raise ConfigurationError(
                "the aiohttp transport speaks HTTP/1.1 only; use transport='httpx' "
                "(or 'auto') for http2=True",
                field="http2",
            )
        from .aiohttp import AiohttpTransport

        return AiohttpTransport(verify=verify, limits=limits, proxy=proxy)
    return httpx.AsyncHTTPTransport(verify=verify, limits=limits, http2=http2, proxy=proxy)


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
    return make_transport(
        chosen,
        verify=config.verify_ssl,
        http2=config.http2,
        limits=httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_keepalive_connections,
            keepalive_expiry=config.keepalive_expiry,
        ),
    )
