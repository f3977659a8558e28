"""``NativeTransport``: HTTP/1.1 over asyncio with httptools' C parser, as an httpx transport.

httpx keeps its API (``httpx.AsyncClient``, auth flows, cookies, redirects,
decoding, :class:`~httpx_resilience.ResilientTransport`); this transport only
moves bytes, and does it with a few attribute writes per callback on top of
asyncio's own socket handling: per request it costs about a third of
aiohttp's client and a tenth of httpcore's at 64 concurrent requests (see
``bench/RESULTS.md``).

What it keeps exactly as httpx's own transport does:

- the request goes out with httpx's headers only, as given (names, order,
  case); a streamed body is framed ``Transfer-Encoding: chunked`` unless the
  request carries a ``Content-Length``;
- the response body is handed over raw, so httpx decodes ``gzip``/``br`` once;
- timeouts come from ``request.extensions["timeout"]``: ``connect`` bounds
  DNS, TCP and TLS (``httpx.ConnectTimeout``), ``read`` is the longest wait for
  any read (``httpx.ReadTimeout``), ``write`` the longest wait for the socket
  to take more of the request (``httpx.WriteTimeout``), ``pool`` the wait for
  a free connection (``httpx.PoolTimeout``);
- faults surface as the httpx exception httpcore raises for the same fault
  (see :mod:`._response`); a request is resent by the transport only when it
  provably never left (its kept-alive connection turned out closed before any
  byte was written), once, on a new connection; any other retry is the
  pipeline's decision;
- an idle connection is checked before it is reused (a zero-timeout
  ``poll``, as httpcore checks the socket), so a server's close that the
  event loop has not reported yet is not taken for a live connection;
- ``limits``: ``max_connections``, ``max_keepalive_connections`` and
  ``keepalive_expiry`` mean what they mean for ``httpx.AsyncHTTPTransport``;
- TLS with httpx's default context (certifi) or the one given; the
  ``sni_hostname`` request extension; HTTP proxies (absolute-form requests for
  ``http://``, a ``CONNECT`` tunnel for ``https://``) with ``httpx.Proxy``'s
  auth and headers.

Every buffer a server fills is bounded (``max_head_bytes``, 64 KiB, and
``max_headers``, 100, by default; see :mod:`._parse`): a longer head, more
fields, or an endless chunk extension or trailer fails the request with
``httpx.RemoteProtocolError`` naming the limit as soon as it is passed.

Differences: HTTP/1.1 only (no HTTP/2), no SOCKS proxies, no ``Upgrade``
(``101``) and no ``network_stream`` extension; 1xx interim responses are
skipped; the head limits above (h11 bounds only an incomplete head's bytes).

The package, by concept (each module's docstring tells more):

- ``_transport``: :class:`NativeTransport` (settings, pool lifecycle, a request in,
  a response out);
- ``_request``: the request on the wire (origin, head, a streamed body, waiting
  for the socket to drain);
- ``_connection``: ``H1Connection``, the asyncio protocol per connection
  (writes a request, waits for the response, read timeout, the check before reuse);
- ``_parse``: ``ResponseParser``, the connection's reading half (bytes to
  httptools within the limits, its callbacks);
- ``_response``: the rules beyond httptools' parser (a refused head, obs-fold,
  a close mid-response, the limits' errors) and the httpx error for each fault;
- ``_body``: the body of a response that came after its head, read as it arrives;
- ``_pool``: ``ConnectionPool``, the limits and the idle connections (their
  expiry, origins that close every connection after its response);
- ``_connect``: opening a connection (TCP, Unix socket, TLS, HTTP proxy tunnel).

Importing the package checks first that httptools is installed, and raises
:class:`ImportError` with the install hint otherwise.
"""

from __future__ import annotations

try:
    import httptools  # noqa: F401  (the parser _connection uses; checked here for the hint)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "NativeTransport needs httptools: pip install 'httpx-resilience[fast]'"
    ) from exc

from ._transport import NativeTransport

__all__ = ["NativeTransport"]

# The class lives in ._transport but is documented, imported and pickled from here,
# as it was before the package was split.
NativeTransport.__module__ = __name__
