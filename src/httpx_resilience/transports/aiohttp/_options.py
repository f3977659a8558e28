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

__all__ = ["HEAD_LIMITS", "SESSION_LIMITS", "proxy_options", "ssl_option", "with_proxy_headers"]

# The response head's bounds (httpx's own transport refuses a head over 100 KiB):
# no line (the status line, one header field) over 64 KiB, at most 100 fields.
HEAD_LIMITS: Final = {"max_line_size": 65536, "max_field_size": 65536, "max_headers": 100}
SESSION_LIMITS: Final[dict[str, Any]] = {
    name: value
    for name, value in HEAD_LIMITS.items()
    if name in inspect.signature(aiohttp.ClientSession.__init__).parameters
}
"""The head limits this aiohttp's ``ClientSession`` accepts (``max_headers`` is newer than 3.10)."""


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
