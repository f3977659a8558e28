"""Sending a request of :class:`~httpx_resilience.HTTPClient`: through ``httpx.Client``,
the body read within ``max_response_bytes``.

The sync client stays thin: ``httpx.Client`` (auth flow, redirects, cookies)
over a :class:`~httpx_resilience.ResilientTransport` whose sync path runs the
pipeline. The response comes back unread (``stream=True``) and is read here
with the same cap as the async client's: an in-memory body the pipeline
buffered is taken as it is (``_send._read_in_memory``, shared), any other
is read chunk by chunk and stops at the chunk that passes the cap.
"""

from __future__ import annotations

import httpx

from ..pipeline._outcome import response_too_large
from ._send import _CAN_SET_CONTENT, _read_in_memory

__all__ = ["SyncSender", "read_capped_sync"]


class SyncSender:
    """Sends the requests of one :class:`HTTPClient` through its ``httpx.Client``.

    Args:
        client: the client's ``httpx.Client`` (its transport is the pipeline).
        keep_cookies: keep the cookies a response sets (the ``cookies``
            setting); otherwise the jar is emptied after each request.
    """

    __slots__ = ("_client", "_keep_cookies")

    def __init__(self, client: httpx.Client, *, keep_cookies: bool) -> None:
        self._client = client
        self._keep_cookies = keep_cookies

    def send(self, request: httpx.Request, limit: int | None) -> httpx.Response:
        """Send through the pipeline and read the body within ``limit`` bytes.

        Raises:
            ResponseTooLargeError: the body passed ``limit``.
        """
        try:
            response = self._client.send(request, stream=True)
            read_capped_sync(response, limit)
            return response
        finally:
            if not self._keep_cookies:
                self._client.cookies.clear()

    def stream(self, request: httpx.Request) -> httpx.Response:
        """Send and return the response unread (the caller reads and closes it)."""
        return self._client.send(request, stream=True)


def read_capped_sync(response: httpx.Response, limit: int | None) -> None:
    """``response.read()``, but stop (and close it) once the decoded body passes ``limit``.

    Raises:
        ResponseTooLargeError: the body passed ``limit``.
    """
    try:
        if _read_in_memory(response, limit):
            return
        if limit is None or not _CAN_SET_CONTENT:
            response.read()
            if limit is not None and len(response.content) > limit:
                raise response_too_large(limit, len(response.content), response.request)
            return
        chunks: list[bytes] = []
        received = 0
        for part in response.iter_bytes():
            received += len(part)
            if received > limit:
                raise response_too_large(limit, received, response.request)
            chunks.append(part)
    except BaseException:
        response.close()
        raise
    response._content = b"".join(chunks)
