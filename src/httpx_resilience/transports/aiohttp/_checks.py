"""What AiohttpTransport refuses before sending: a method or header that would break the head.

aiohttp raises a bare ``ValueError`` for a CR, LF or NUL in a header or
method, and sends a header name with a space or colon as given (a server
then reads a different header: ``X:Y: v`` is ``X`` with the value ``Y: v``).
httpx's own transport refuses all of them with ``httpx.LocalProtocolError``;
so do these checks, which also keep the value out of the message: a header
value is often a credential read from a file with its trailing newline, and
the error ends up in logs.

Names and methods that passed are remembered (a small set, cleared when it
grows past a bound), so a request with the usual headers costs one set lookup
per name and three substring tests per value.

Imported through the package :mod:`httpx_resilience.transports.aiohttp`.
"""

from __future__ import annotations

from typing import Final

import httpx

from .._common import TOKEN, method_error

__all__ = ["check_header", "check_method", "headers_for_aiohttp"]

# names and methods already checked (each must be a token)
_CACHE_LIMIT: Final = 512
_names: set[str] = set()
_methods: set[str] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _shown(text: str) -> str:
    return repr(text[:64]) + ("…" if len(text) > 64 else "")


def check_method(method: str, request: httpx.Request) -> None:
    """Raise ``httpx.LocalProtocolError`` unless ``method`` is a token."""
    if method in _methods:
        return
    if not TOKEN.match(method):
        raise method_error(method, request)
    if len(_methods) >= _CACHE_LIMIT:
        _methods.clear()
    _methods.add(method)


def check_header(name: str, value: str, request: httpx.Request) -> None:
    """Raise ``httpx.LocalProtocolError`` for a header that would break the head.

    The message names the header, never its value.
    """
    if name not in _names:
        if not TOKEN.match(name):
            raise httpx.LocalProtocolError(
                f"Illegal header name {_shown(name)}: a header name is a token (letters, "
                "digits and !#$%&'*+-.^_`|~), without spaces, colons, CR or LF",
                request=request,
            )
        if len(_names) >= _CACHE_LIMIT:
            _names.clear()
        _names.add(name)
    if "\r" in value or "\n" in value or "\0" in value:
        raise httpx.LocalProtocolError(
            f"Illegal header value for {_shown(name)}: CR, LF and NUL are not allowed in "
            "a header value (a token read from a file often ends with a newline: strip it)",
            request=request,
        )


def headers_for_aiohttp(
    raw: list[tuple[bytes, bytes]], chunked: bool, request: httpx.Request
) -> list[tuple[str, str]]:
    """httpx's headers, names as given, for aiohttp (which writes them as UTF-8), checked.

    For a streamed body aiohttp frames ``Transfer-Encoding: chunked`` itself
    and refuses the header, so it is left out (a ``Content-Length`` is kept).

    Raises:
        httpx.LocalProtocolError: a header name that is not a token, or a CR,
            LF or NUL in a value (the message names the header only).
    """
    try:
        pairs = [(k.decode(), v.decode()) for k, v in raw]
    except UnicodeDecodeError:
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
    names = _names
    for name, value in pairs:
        if name not in names or "\r" in value or "\n" in value or "\0" in value:
            check_header(name, value, request)
    if chunked:
        pairs = [
            (k, v)
            for k, v in pairs
            if not (k.lower() == "transfer-encoding" and v.strip().lower() == "chunked")
        ]
    return pairs
