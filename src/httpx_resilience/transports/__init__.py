"""Inner transports for :class:`~httpx_resilience.ResilientTransport` and plain httpx.

- :class:`NativeTransport`: an ``httpx.AsyncBaseTransport`` speaking HTTP/1.1
  over asyncio with httptools' C parser: the cheapest per request. It needs
  the ``fast`` extra: ``pip install 'httpx-resilience[fast]'``.
- :class:`AiohttpTransport`: an ``httpx.AsyncBaseTransport`` that sends requests
  through ``aiohttp`` (HTTP/1.1, C parser, a cheaper connection pool). It needs
  the ``aiohttp`` extra: ``pip install 'httpx-resilience[aiohttp]'``.
- :func:`make_transport` / :func:`default_transport`: pick one by name
  (``"httpx"``, ``"native"``, ``"aiohttp"``, ``"auto"``).

Importing this package imports neither httptools nor aiohttp; the transports
are loaded on first access, and raise :class:`ImportError` with the install
hint when their library is missing.

The folder:

- ``native/``: :class:`NativeTransport`, a package by concept: ``_transport``
  (the class), ``_request`` (the request on the wire), ``_connection`` (the
  asyncio protocol per connection), ``_response`` (the rules beyond the
  parser, the error per fault), ``_body`` (a response body read as it
  arrives), ``_pool`` (the connection pool), ``_connect`` (opening a
  connection: TCP, Unix socket, TLS, HTTP proxy);
- ``aiohttp/``: :class:`AiohttpTransport`: ``_transport`` (the class),
  ``_options`` (httpx's options as aiohttp's), ``_checks`` (methods and
  headers refused before sending), ``_connector`` (the pool, checking idle
  connections), ``_protocol`` (the bounded protocol per connection),
  ``_errors`` (aiohttp's exceptions as httpx's), ``_streams`` (bodies both ways);
- ``factory.py``: :func:`make_transport`, :func:`default_transport`, the
  ``*_available`` checks;
- ``_common.py``: what all of them read the same way (default limits, proxy rules);
- ``_url.py``: the URL check every transport makes before it connects;
- ``_mocks.py``: whether respx or pytest-httpx has patched httpx (our
  transports then send through httpx's own, where the mock sits).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .factory import (
    TransportKind,
    aiohttp_available,
    default_transport,
    make_transport,
    native_available,
)

if TYPE_CHECKING:
    from .aiohttp import AiohttpTransport
    from .native import NativeTransport

__all__ = [
    "AiohttpTransport",
    "NativeTransport",
    "TransportKind",
    "aiohttp_available",
    "default_transport",
    "make_transport",
    "native_available",
]

_LAZY = {"AiohttpTransport": ".aiohttp", "NativeTransport": ".native"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
