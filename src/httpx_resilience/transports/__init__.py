"""Inner transports for :class:`~httpx_resilience.ResilientTransport` and plain httpx.

- :class:`AiohttpTransport`: an ``httpx.AsyncBaseTransport`` that sends requests
  through ``aiohttp`` (HTTP/1.1, C parser, a cheaper connection pool). It needs
  the ``aiohttp`` extra: ``pip install 'httpx-resilience[aiohttp]'``.
- :func:`make_transport` / :func:`default_transport`: pick httpx's own
  transport or the aiohttp one by name (``"httpx"``, ``"aiohttp"``, ``"auto"``).

Importing this package never imports aiohttp; :class:`AiohttpTransport` is
loaded on first access, and raises :class:`ImportError` with the install hint
when aiohttp is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .factory import TransportKind, aiohttp_available, default_transport, make_transport

if TYPE_CHECKING:
    from .aiohttp import AiohttpTransport

__all__ = [
    "AiohttpTransport",
    "TransportKind",
    "aiohttp_available",
    "default_transport",
    "make_transport",
]


def __getattr__(name: str) -> Any:
    if name == "AiohttpTransport":
        value = importlib.import_module(".aiohttp", __name__).AiohttpTransport
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
