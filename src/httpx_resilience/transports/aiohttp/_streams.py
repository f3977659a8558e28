"""Bodies between httpx and aiohttp: the request body aiohttp reads, the response body httpx reads.

A streamed httpx request body (an async generator, multipart) is handed to
aiohttp as an async iterator (:func:`request_body`); an aiohttp response whose
body has not fully arrived is handed to httpx as a :class:`ResponseStream`
that reads it as it arrives, maps aiohttp's errors to httpx's, and frees the
connection (and its pool permit) when closed.

Imported through the package :mod:`httpx_resilience.transports.aiohttp`,
which checks first that aiohttp is installed (and otherwise raises
``ImportError`` with the install hint).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx

from ._errors import map_exception, unexpected_error

__all__ = ["BodyErrors", "Releaser", "ResponseStream", "request_body"]

Releaser = Callable[[], None]


class ResponseStream(httpx.AsyncByteStream):
    """The body of an aiohttp response, read as it arrives; closing frees the connection."""

    __slots__ = ("_closed", "_release", "_request", "_response")

    def __init__(
        self, response: aiohttp.ClientResponse, request: httpx.Request, release: Releaser
    ) -> None:
        self._response = response
        self._request = request
        self._release = release
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while chunk := await content.readany():  # b"" only at the end of the body
                yield chunk
        except Exception as exc:
            mapped = map_exception(exc, self._request, self._response) or unexpected_error(
                exc, self._request, reading=True
            )
            if mapped is None:  # pragma: no cover - unexpected_error maps every Exception
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        response = self._response
        try:
            if response.content.at_eof():
                response.release()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # closed early: the connection cannot be reused
        finally:
            self._release()


class BodyErrors:
    """Where :func:`request_body` keeps the error the caller's body iterator raised.

    It tells the caller's own error (re-raised unchanged) from one aiohttp
    raised while sending (mapped to httpx's).
    """

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Exception | None = None


async def request_body(
    stream: httpx.AsyncByteStream | httpx.SyncByteStream, errors: BodyErrors
) -> AsyncIterator[bytes]:
    """A streamed request body (async generator, multipart) as aiohttp reads it."""
    try:
        if isinstance(stream, httpx.AsyncByteStream):
            async for chunk in stream:
                yield chunk
        else:
            for chunk in stream:
                yield chunk
    except Exception as exc:
        errors.error = exc
        raise
