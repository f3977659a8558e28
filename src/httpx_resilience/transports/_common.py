"""What every inner transport of ours reads the same way: default pool limits and the proxy setting.

``NativeTransport`` and ``AiohttpTransport`` (and the factory) take httpx's
``limits=`` and ``proxy=`` arguments; the defaults and the rules for a proxy
(HTTP(S) only, with a host and port a connection can be made to; its
credentials become a ``Proxy-Authorization`` header) live here once.
"""

from __future__ import annotations

import base64
import re
from typing import Final

import httpx

from ..exceptions import ConfigurationError, InvalidURLError
from ._url import check_url

__all__ = ["DEFAULT_LIMITS", "TOKEN", "http_proxy", "method_error", "proxy_header_pairs"]

DEFAULT_LIMITS: Final = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""The same defaults as ``httpx.AsyncHTTPTransport``."""

TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
"""An HTTP token (RFC 9110 §5.6.2): what a method or a header name must be."""


def method_error(method: str, request: httpx.Request) -> httpx.LocalProtocolError:
    """The error for a method that is not a token: nothing is sent."""
    shown = repr(method[:64]) + ("…" if len(method) > 64 else "")
    return httpx.LocalProtocolError(
        f"Illegal request method {shown}: a method is an HTTP token (ASCII letters, digits "
        "and !#$%&'*+-.^_`|~), without spaces, CR or LF",
        request=request,
    )


def http_proxy(proxy: str | httpx.URL | httpx.Proxy | None, transport: str) -> httpx.Proxy | None:
    """The proxy setting as an ``httpx.Proxy`` (``None`` for none).

    Raises:
        ConfigurationError: a proxy scheme other than ``http``/``https`` (SOCKS),
            naming ``transport`` and the way out; a proxy URL without a valid
            host or port (see :func:`~._url.check_url`).
    """
    if proxy is None:
        return None
    if not isinstance(proxy, httpx.Proxy):
        try:
            proxy = httpx.Proxy(proxy)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:  # unparsable, no scheme
            raise ConfigurationError(
                f"{transport}: proxy must be a URL such as 'http://user:pass@proxy:3128' "
                f"({exc})",
                field="proxy",
            ) from None
    if proxy.url.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"{transport} supports HTTP(S) proxies only, not {proxy.url.scheme}:// "
            "(use transport='httpx' with httpx[socks] for SOCKS)",
            field="proxy",
        )
    try:
        check_url(proxy.url)
    except InvalidURLError as exc:
        raise ConfigurationError(f"proxy: {exc}", field="proxy") from None
    return proxy


def proxy_header_pairs(proxy: httpx.Proxy) -> list[tuple[bytes, bytes]]:
    """The headers sent to the proxy: its own, plus ``Proxy-Authorization`` from its credentials."""
    headers = list(proxy.headers.raw)
    if proxy.auth is not None:
        user, password = proxy.auth
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers.append((b"Proxy-Authorization", f"Basic {token}".encode("ascii")))
    return headers
