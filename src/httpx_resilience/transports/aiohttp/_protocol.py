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

aiohttp parses a whole read (up to 256 KiB on asyncio's loop) before it
hands over any message, so a bound that fires on one message has the rest
of that read already parsed behind it: the final response after a flood of
interim ones, stray responses after the end of the previous one. Hence once
a bound fires, or a message arrives for a connection sitting idle, the
connection is marked failed and closed, and nothing parsed after it is
delivered: the request gets the error, never the response that followed
the flood, and the pool keeps no stray message.

These cost an attribute test or two per read and per message; the interim
bound adds a little arithmetic per interim response, which is rare.

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
    failed = False
    """Set once a bound fired or a message came for an idle connection: the
    connection is closing, and no message parsed after that is delivered."""

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
        """A parsed response head (with its body stream) for the waiting request.

        aiohttp calls this for every message of a read after parsing all of
        it, so the checks come first: a connection that failed delivers
        nothing more, and a message for an idle connection (parsed from the
        read that ended the previous response) is dropped with the connection.
        """
        if self.failed:
            return
        if self.idle:
            self._fail()  # nobody asked for it: drop it, and close rather than pool it
            return
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
        limit = self._max_interim_bytes
        self._fail(
            HttpProcessingError(
                message=f"interim (1xx) response heads without a final one passed "
                f"max_head_bytes={limit} bytes (raise AiohttpTransport(max_head_bytes=...) "
                "if this server sends that many)"
            )
        )
        return True

    def _fail(self, error: BaseException | None = None) -> None:
        """Deliver nothing more on this connection, close it, fail its request with ``error``."""
        self.failed = True
        if error is not None:
            self.set_exception(error)
        else:
            self._should_close = True
        if self.transport is not None:
            self.transport.close()


# The overridden methods, called without super()'s lookup on every read.
_DATA_RECEIVED: Final = ResponseHandler.data_received
_FEED_DATA: Final = ResponseHandler.feed_data
