"""httpx's options as aiohttp's: TLS verification, the proxy and its headers, the head's bounds.

Imported through the package :mod:`httpx_resilience.transports.aiohttp`,
which checks first that aiohttp is installed (and otherwise raises
``ImportError`` with the install hint).
"""

from __future__ import annotations

import inspect
import ssl
from typing import Any, Final

import aiohttp
import httpx

from .._common import http_proxy, proxy_header_pairs

__all__ = [
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEAD_BYTES",
    "head_limits",
    "proxy_options",
    "ssl_option",
    "with_proxy_headers",
]

DEFAULT_MAX_HEAD_BYTES: Final = 64 * 1024
"""The longest response head line (status line, one header field), as ``NativeTransport``'s head."""
DEFAULT_MAX_HEADERS: Final = 100
"""The most header fields in a response head or trailer section, as ``NativeTransport``'s."""

_SESSION_PARAMETERS: Final = frozenset(inspect.signature(aiohttp.ClientSession.__init__).parameters)


def head_limits(max_head_bytes: int, max_headers: int) -> dict[str, Any]:
    """``ClientSession`` keyword arguments bounding the response head.

    aiohttp bounds each line (``max_line_size``: the status line and a chunk
    size line; ``max_field_size``: one header field) and the number of fields
    (``max_headers``, newer than aiohttp 3.10: left out where it is missing),
    not the head as a whole. A head past a bound fails with
    ``httpx.RemoteProtocolError``.
    """
    limits = {
        "max_line_size": max_head_bytes,
        "max_field_size": max_head_bytes,
        "max_headers": max_headers,
    }
    return {name: value for name, value in limits.items() if name in _SESSION_PARAMETERS}


def with_proxy_headers(
    headers: list[tuple[str, str]], proxy: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The request's headers plus the proxy's (``Proxy-Authorization``, ...); the request's win."""
    own = {name.lower() for name, _ in headers}
    return headers + [(name, value) for name, value in proxy if name.lower() not in own]


def ssl_option(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` for httpx's ``verify=``: the same CA bundle httpx would use."""
    if verify is False:
        return False
    if isinstance(verify, ssl.SSLContext):
        return verify
    return httpx.create_ssl_context(verify=verify)


def proxy_options(proxy: str | httpx.URL | httpx.Proxy | None) -> dict[str, Any]:
    """Per-request ``proxy``/``proxy_headers`` keyword arguments for aiohttp.

    Raises:
        ConfigurationError: a proxy scheme aiohttp cannot use (SOCKS).
    """
    checked = http_proxy(proxy, "AiohttpTransport")
    if checked is None:
        return {}
    options: dict[str, Any] = {"proxy": str(checked.url.copy_with(username=None, password=None))}
    pairs = proxy_header_pairs(checked)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in pairs}
    if headers:
        options["proxy_headers"] = headers
    return options
