"""``AiohttpTransport``: an ``httpx.AsyncBaseTransport`` over an ``aiohttp.ClientSession``.

httpx keeps its API (``httpx.AsyncClient``, auth flows, cookies, redirects,
decoding, :class:`~httpx_resilience.ResilientTransport`); aiohttp moves the
bytes: its C HTTP parser and connection pool cost a fraction of httpcore's per
request, and unlike httpcore's pool they do not degrade under concurrency.

What the adapter keeps exactly as httpx's own transport does:

- the request goes out with httpx's headers only: aiohttp adds no
  ``User-Agent``, ``Accept``, ``Accept-Encoding`` or ``Content-Type`` of its
  own, keeps no cookies (httpx does that), follows no redirects, and does not
  resend a request on a dropped keep-alive connection (retrying is the
  pipeline's decision, and a request counted once upstream is one attempt);
- the response body is handed over raw (``auto_decompress=False``) with the
  original headers, so httpx decodes ``gzip``/``br`` exactly once;
- timeouts come from ``request.extensions["timeout"]`` and surface as
  ``httpx.ConnectTimeout`` / ``httpx.ReadTimeout`` / ``httpx.PoolTimeout``;
  aiohttp's errors surface as the ``httpx`` class httpx raises for the same
  fault (see :func:`map_exception`);
- ``limits`` caps connections in use (waiting callers get ``PoolTimeout``
  after the pool timeout), ``keepalive_expiry`` bounds idle connections;
- a bad URL is refused before any connection (``InvalidURLError``), an
  illegal method or header with ``httpx.LocalProtocolError``; while respx or
  pytest-httpx has patched httpx, requests go through httpx's own transport
  so the mock answers them.

Differences (aiohttp has no equivalent): HTTP/1.1 only; the ``write`` timeout
is not enforced (the attempt timeout of ``ResilientTransport`` still bounds
it); ``max_keepalive_connections`` is not a separate cap (idle connections are
bounded by ``max_connections`` and expire after ``keepalive_expiry``); a
``DELETE`` without a body carries ``Content-Length: 0``; SOCKS proxies are not
supported.

The package, by concept:

- ``_transport``: :class:`AiohttpTransport` (settings, the session's lifecycle,
  a request in, a response out);
- ``_options``: httpx's options as aiohttp's (TLS, proxy and its headers,
  the response head's bounds);
- ``_checks``: the method and headers refused before sending (typed errors
  that name the header, never its value);
- ``_connector``: the pool, which never hands out an idle connection the
  peer has closed, reset or written to;
- ``_protocol``: the protocol per connection, closing an idle connection that
  receives bytes and bounding interim (``1xx``) responses;
- ``_errors``: :func:`map_exception` (aiohttp's exceptions as httpx's), and
  the typed error for anything aiohttp lets out bare;
- ``_streams``: the request body aiohttp reads and the response body httpx reads.

Importing the package checks first that aiohttp is installed, and raises
:class:`ImportError` with the install hint otherwise. Inside this package
``import aiohttp`` is the aiohttp library itself (absolute imports), never
this package.
"""

from __future__ import annotations

try:
    import aiohttp  # noqa: F401  (what the modules below use; checked here for the hint)
    import yarl  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "AiohttpTransport needs aiohttp: pip install 'httpx-resilience[aiohttp]'"
    ) from exc

from ._errors import map_exception
from ._transport import AiohttpTransport

__all__ = ["AiohttpTransport", "map_exception"]

# The class lives in ._transport but is documented, imported and pickled from here,
# as it was before the package was split.
AiohttpTransport.__module__ = __name__
