"""A response body NativeTransport hands to httpx when it had not fully arrived with its head.

Small responses come whole with their head and are handed over as an
``httpx.ByteStream``; a longer one is a :class:`BodyStream` that reads the
connection as the body arrives and, when closed, gives the connection back to
the pool (or closes it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

from ._connection import H1Connection

__all__ = ["BodyStream"]


class BodyStream(httpx.AsyncByteStream):
    """A response body that had not fully arrived with its head, read as it arrives.

    Closing it gives the connection back to the pool when the body was read
    to its end on a kept-alive connection, and closes it otherwise.
    """

    __slots__ = ("_conn", "_done", "_release", "_timeout")

    def __init__(
        self,
        conn: H1Connection,
        timeout: float | None,
        release: Callable[[H1Connection, bool], None],
    ) -> None:
        self._conn = conn
        self._timeout = timeout
        self._release = release
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while chunk := await conn.read_body(self._timeout):
            yield chunk

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        conn = self._conn
        reusable = conn.reusable
        conn.finish()
        if not reusable:
            conn.close()
        self._release(conn, reusable)
