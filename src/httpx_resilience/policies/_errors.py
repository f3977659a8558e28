"""Which exceptions the generic retry helpers retry, and what a server asked for.

* :func:`is_network_error`: a connection or timeout failure (httpx, asyncio,
  the stdlib, ours; aiohttp, requests and curl_cffi once they are loaded —
  nothing is imported here, a library that is not loaded raised nothing);
* :func:`is_api_error`: a network error or a transient status (5xx, 408,
  429), the status read from ``.status_code``, ``.status`` or
  ``.response.status_code``;
* :func:`server_delay`: a ``RateLimitError``'s ``retry_after``, or the
  ``Retry-After`` of a 429/503 an exception carries, read by the one
  ``Retry-After`` parser (:func:`~httpx_resilience.policies.retry.retry_after_delay`).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import httpx

from ..exceptions import (
    BulkheadFullError,
    CircuitBreakerOpenError,
    HTTPRequestError,
    RateLimitError,
    RateLimiterTimeout,
    RetryExhaustedError,
)
from .retry import retry_after_delay

__all__ = ["NETWORK_ERRORS", "is_api_error", "is_network_error", "server_delay", "status_of"]

_log = logging.getLogger("httpx_resilience.retry")

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    HTTPRequestError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)
"""Exceptions that mean "the network failed". The network errors of aiohttp,
requests and curl_cffi are recognised too, once those libraries are loaded."""

# Refusals made before anything was sent: retrying them immediately only adds load.
_NEVER: tuple[type[BaseException], ...] = (
    CircuitBreakerOpenError,
    RateLimiterTimeout,
    BulkheadFullError,
    RetryExhaustedError,
)

# Other HTTP clients' network errors, by (module, attribute): connection
# failures, timeouts, a body cut short. Not their HTTP-status errors.
_FOREIGN_NETWORK_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aiohttp", ("ClientConnectionError", "ClientPayloadError")),
    ("requests.exceptions", ("ConnectionError", "Timeout", "ChunkedEncodingError")),
    ("curl_cffi.requests.exceptions",
     ("ConnectionError", "Timeout", "ChunkedEncodingError", "IncompleteRead")),
)
# curl error codes of a failed connection or transfer (an older curl_cffi raises
# its base error with only the code): proxy/host resolution, connect, HTTP/2
# framing, partial file, timeout, TLS handshake, empty reply, send/recv, HTTP/2
# stream, HTTP/3.
_CURL_NETWORK_CODES = frozenset({5, 6, 7, 16, 18, 28, 35, 52, 55, 56, 92, 95})
_foreign: tuple[type[BaseException], ...] = ()
_foreign_seen: tuple[int, ...] = ()  # the id of each library's module (0: not loaded)


def _foreign_errors() -> tuple[type[BaseException], ...]:
    """The network error classes of the optional libraries loaded so far.

    Nothing is imported: a library that is not loaded cannot have raised
    anything. Three dictionary look-ups a call; rebuilt when a library appears,
    goes, or is replaced by another module object (a reload).
    """
    global _foreign, _foreign_seen
    modules = sys.modules
    loaded = tuple(id(modules[m]) if m in modules else 0 for m, _ in _FOREIGN_NETWORK_ERRORS)
    if loaded != _foreign_seen:
        found: list[type[BaseException]] = []
        for module_name, names in _FOREIGN_NETWORK_ERRORS:
            module = sys.modules.get(module_name)
            for name in names if module is not None else ():
                cls = getattr(module, name, None)
                if isinstance(cls, type) and issubclass(cls, BaseException):
                    found.append(cls)
        _foreign, _foreign_seen = tuple(found), loaded
    return _foreign


def _is_curl_network_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("curl_cffi") and getattr(
        exc, "code", None
    ) in _CURL_NETWORK_CODES


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection/timeout failure worth retrying.

    httpx's transport errors, ours, the stdlib's ``ConnectionError`` and
    ``TimeoutError``; aiohttp's ``ClientConnectionError`` and
    ``ClientPayloadError``; requests' and curl_cffi's ``ConnectionError``,
    ``Timeout`` and ``ChunkedEncodingError`` (and a curl error whose code is
    a connection or transfer failure). Our own refusals (an open circuit, a
    full bulkhead, a limiter timeout) are not.
    """
    if isinstance(exc, _NEVER):
        return False
    return isinstance(exc, (NETWORK_ERRORS, _foreign_errors())) or _is_curl_network_error(exc)


def _int_status(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries: ``.status_code`` (ours, curl_cffi),
    ``.status`` (aiohttp) or ``.response.status_code`` (httpx, requests)."""
    status = _int_status(getattr(exc, "status_code", None))
    if status is None:
        status = _int_status(getattr(exc, "status", None))
    if status is None:
        status = _int_status(getattr(getattr(exc, "response", None), "status_code", None))
    return status


def is_api_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient API failure: a network error, 5xx, 408 or 429.

    The status is read from ``.status_code``, ``.status`` or
    ``.response.status_code``; other 4xx statuses are never retried.
    """
    if is_network_error(exc):
        return True
    status = status_of(exc)
    return status is not None and (status >= 500 or status in (408, 429))


def server_delay(exc: BaseException, now_wall: float, label: str) -> float | None:
    """The delay the server asked for: a :class:`RateLimitError`'s ``retry_after``, or
    the ``Retry-After`` header of a 429/503 the exception carries (on itself, as
    aiohttp's, or on its ``.response``). An invalid header is logged and ignored."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if status_of(exc) not in (429, 503):
        return None
    headers = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    getter = getattr(headers, "get", None)
    value = getter("Retry-After") if callable(getter) else None
    if not isinstance(value, str):
        return None
    delay = retry_after_delay(value, now_wall)
    if delay is None:
        _log.warning(
            "%s: ignoring invalid Retry-After %r; using the computed backoff", label, value[:64],
            extra={"operation": label, "retry_after": value[:64]},
        )
    return delay
