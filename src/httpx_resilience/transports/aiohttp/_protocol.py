"""The protocol per connection AiohttpTransport's pool makes: aiohttp's, bounded where it is not.

:class:`GuardedHandler` is aiohttp's ``ResponseHandler`` with two bounds on
what a peer can make it hold or wait for:

- bytes received while the connection sits idle in the pool close it at once.
  aiohttp would otherwise parse whatever the peer sends meanwhile and keep
  every parsed message (a flood of tiny responses grew the client by 120 MB
  in 3 s), then hand the first of them to the next request as its response;
- interim (``1xx``) responses before a request's final one are bounded in
  bytes (64 KiB by default, as ``NativeTransport`` counts them in its head
  limit). aiohttp skips any number of them, and each one restarts the read
  timeout, so a server sending ``102 Processing`` without end held a request
  forever. Past the bound the request fails with ``httpx.RemoteProtocolError``.

Both cost an attribute test per read; the second adds a little arithmetic
per interim response, which is rare.

Imported through the package :mod:`httpx_resilience.transports.aiohttp`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["GuardedHandler"]


class GuardedHandler(ResponseHandler):
    """aiohttp's protocol per connection, closing an idle connection that receives bytes
    and bounding the interim responses before a final one.

    Args:
        loop: the event loop.
        max_interim_bytes: the most bytes of interim response heads accepted
            for one request.

    Attributes:
        idle: set by the pool while the connection waits there for a request.
    """

    idle = False

    def __init__(self, loop: asyncio.AbstractEventLoop, max_interim_bytes: int = 65536) -> None:
        super().__init__(loop)
        self._max_interim_bytes = max_interim_bytes
        self._interim_bytes = 0

    def went_idle(self) -> None:
        """The connection is back in the pool: its request has its final response."""
        self.idle = True
        self._interim_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self.idle and data:
            self.close()  # nothing is parsed or kept; the pool drops it on its next look
            return
        _DATA_RECEIVED(self, data)

    def feed_data(self, data: Any, size: int = 0) -> None:
        """A parsed response head (with its body stream) for the waiting request."""
        code = data[0].code  # aiohttp feeds (RawResponseMessage, payload)
        if 100 <= code < 200 and code != 101 and self._over_interim_bound(data[0]):
            return
        _FEED_DATA(self, data, size)

    def _over_interim_bound(self, message: Any) -> bool:
        """Count an interim head; past the bound, fail the request and close the connection."""
        self._interim_bytes += 16 + len(message.reason or "") + sum(
            len(name) + len(value) + 4 for name, value in message.raw_headers
        )
        if self._interim_bytes <= self._max_interim_bytes:
            return False
        self.set_exception(
            HttpProcessingError(
                message=f"interim (1xx) responses without a final one passed "
                f"{self._max_interim_bytes} bytes"
            )
        )
        if self.transport is not None:
            self.transport.close()
        return True


# The overridden methods, called without super()'s lookup on every read.
_DATA_RECEIVED: Final = ResponseHandler.data_received
_FEED_DATA: Final = ResponseHandler.feed_data
