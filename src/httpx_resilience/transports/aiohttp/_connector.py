"""AiohttpTransport's connection pool: aiohttp's, minus the connections the server has closed.

A server may close a kept-alive connection right after a response that did
not say ``Connection: close`` (an idle timeout, a restart, a per-connection
request cap). aiohttp learns of it only when the event loop next reads that
socket, so a request sent straight after the previous response takes the
dead connection and fails (``ReadError`` / ``RemoteProtocolError``) although
the server never saw it: half of 200 back-to-back POSTs to such a server.

:class:`FreshConnector` looks at an idle connection's socket before handing
it out: a readable idle socket means the peer closed it, reset it or sent
bytes nobody asked for, and none of these connections can carry a request.
It is closed and the next idle one (or a new connection) is taken instead;
the request has not been written anywhere yet, so sending it on a fresh
connection is safe for any method. The check is one ``poll`` system call per
reused connection; new connections skip it.

A connection that receives bytes while it sits idle in the pool is closed
at once (:class:`~._protocol.GuardedHandler`, the protocol this connector
makes its connections with, is told when a connection is idle). Bytes that
came in the same read as the end of the previous response are parsed with
it: a message parsed from them is dropped and closes the connection; a head
cut short is thrown away with the parser when the next request starts one.

A close that arrives after the request was written cannot be told apart from
a server that read the request and then failed, so that case still surfaces
as an error, and the retry policy decides (a POST is not resent).

Imported through the package :mod:`httpx_resilience.transports.aiohttp`.
"""

from __future__ import annotations

import functools
import inspect
import select
from typing import Any, Final

import aiohttp

from ._protocol import GuardedHandler

__all__ = ["FreshConnector", "idle_socket_is_dead"]

if hasattr(select, "poll"):
    _POLL_EVENTS: Final = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP

    def _readable(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, _POLL_EVENTS)
        return bool(poller.poll(0))

else:  # pragma: no cover - Windows has no poll(); select() takes any socket there

    def _readable(fd: int) -> bool:
        readable, _, errors = select.select([fd], [], [fd], 0)
        return bool(readable or errors)


def idle_socket_is_dead(transport: Any) -> bool:
    """Whether an idle connection's socket has anything to read (EOF, a reset, stray bytes).

    An idle HTTP/1.1 connection has nothing to receive until a request is
    sent, so any readable state means it cannot be used. A transport without
    a socket, or one whose socket cannot be polled, counts as dead.
    """
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False  # not a socket (a test double): nothing to look at
    try:
        fd = sock.fileno()
        return fd < 0 or _readable(fd)
    except (OSError, ValueError):
        return True


def _get_is_hookable() -> bool:
    """Whether aiohttp's pool lookup is the coroutine ``_get(key, traces)`` this module wraps."""
    get = getattr(aiohttp.BaseConnector, "_get", None)
    if get is None or not inspect.iscoroutinefunction(get):
        return False
    try:
        return list(inspect.signature(get).parameters) == ["self", "key", "traces"]
    except (TypeError, ValueError):  # pragma: no cover - a C-level or wrapped method
        return False


_HOOKABLE: Final = _get_is_hookable()


class FreshConnector(aiohttp.TCPConnector):
    """``aiohttp.TCPConnector`` that never hands out an idle connection the peer has closed.

    Args:
        max_interim_bytes: the most bytes of interim (``1xx``) response heads
            accepted before a request's final response (see
            :class:`~._protocol.GuardedHandler`).
        *args, **kwargs: ``aiohttp.TCPConnector``'s.

    Attributes:
        discarded: how many pooled connections were found dead and closed
            instead of being reused.
    """

    discarded = 0

    def __init__(self, *args: Any, max_interim_bytes: int = 65536, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # aiohttp's factory of the protocol per connection (the same in 3.10 to 3.14)
        if isinstance(getattr(self, "_factory", None), functools.partial):
            self._factory = functools.partial(  # type: ignore[assignment]
                GuardedHandler, loop=self._loop, max_interim_bytes=max_interim_bytes
            )

    if _HOOKABLE:

        async def _get(self, key: Any, traces: Any) -> aiohttp.connector.Connection | None:
            while True:
                connection = await super()._get(key, traces)
                if connection is None:
                    return None
                protocol = connection.protocol
                if isinstance(protocol, GuardedHandler):
                    protocol.idle = False
                transport = connection.transport
                # should_close: bytes read before the pause (a stray response
                # would be taken for the next request's), or an error.
                if not (
                    protocol is None
                    or protocol.should_close
                    or idle_socket_is_dead(transport)
                ):
                    return connection
                self.discarded += 1
                connection.close()  # not reusable: close it and look at the next one

        def _release(self, key: Any, protocol: Any, *args: Any, **kwargs: Any) -> None:
            super()._release(key, protocol, *args, **kwargs)
            # Kept in the pool: idle now. aiohttp releases a connection when the
            # whole body has arrived, so any later byte is one nobody asked for.
            if isinstance(protocol, GuardedHandler) and protocol.is_connected():
                protocol.went_idle()
