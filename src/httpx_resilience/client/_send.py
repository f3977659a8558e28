"""Sending a request: on the lean path straight into the pipeline, else via ``httpx.AsyncClient``.

With no redirects to follow and no cookie jar to keep (the usual set-up),
:class:`~httpx_resilience.AsyncHTTPClient` skips ``httpx.AsyncClient.send``
and its layers and calls :class:`~httpx_resilience.ResilientTransport`
itself, doing what ``AsyncClient`` would have done around it:

* drive the ``httpx.Auth`` flow (a 401 may be answered with another request);
* set ``response.request`` and read the body, within its size cap.

The cap (``max_response_bytes``) counts decoded bytes, read chunk by chunk:
the pipeline already stopped a raw body that passed it, so only a compressed
body can pass it here, and reading stops at the chunk that does (the
response is closed). Off the lean path the response comes from
``httpx.AsyncClient`` unread (``stream=True``) and is read the same way.

Reading the body is the other large per-request cost: the pipeline already
holds it in memory, so :func:`_read_in_memory` marks it read without httpx's
streaming machinery when nothing needs decoding.

:class:`Sender` holds what sending needs (the transport, the httpx client,
the auth) and nothing else; the facade calls :meth:`Sender.send` once per
request.
"""

from __future__ import annotations

import httpx

from ..pipeline._outcome import response_too_large

__all__ = ["Sender", "read_capped"]


class Sender:
    """Sends the requests of one client through its pipeline.

    Args:
        transport: the client's pipeline (a ``ResilientTransport``).
        client: the client's ``httpx.AsyncClient`` (used off the lean path,
            and for its closed state).
        auth: the client's auth, driven here on the lean path
            (``httpx.AsyncClient`` drives it otherwise).
        lean: drive the transport directly (no redirects to follow, no cookie jar).
        keep_cookies: keep the cookies a response sets (the ``cookies`` setting);
            otherwise the jar is emptied after each request off the lean path.
    """

    __slots__ = ("_auth", "_client", "_keep_cookies", "_lean", "_transport")

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        client: httpx.AsyncClient,
        auth: httpx.Auth | None,
        *,
        lean: bool,
        keep_cookies: bool,
    ) -> None:
        self._transport = transport
        self._client = client
        self._auth = auth
        self._lean = lean
        self._keep_cookies = keep_cookies

    async def send(self, request: httpx.Request, limit: int | None) -> httpx.Response:
        """Send through the pipeline: directly on the lean path, else via ``httpx.AsyncClient``.

        Args:
            request: the request to send.
            limit: the cap on the (decoded) body in bytes, ``None`` for none.

        Raises:
            ResponseTooLargeError: the body passed ``limit``.
        """
        if not self._lean:
            try:
                response = await self._client.send(request, stream=True)
                await read_capped(response, limit)
                return response
            finally:
                if not self._keep_cookies:
                    self._client.cookies.clear()
        if self._client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        auth = self._auth
        if auth is None:
            return await self._send_once(request, limit)
        # Drive the httpx.Auth generator flow, as httpx.AsyncClient does: it
        # may answer a response (a 401, say) with another request.
        if auth.requires_request_body:
            await request.aread()
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send_once(request, limit)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                await response.aclose()
        finally:
            await flow.aclose()

    async def _send_once(self, request: httpx.Request, limit: int | None) -> httpx.Response:
        """One pass through the pipeline; then, as ``AsyncClient.send``, set the request, read."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not _read_in_memory(response, limit):
            if limit is None or response.is_stream_consumed:  # no cap, or read already
                content = await response.aread()
                if limit is not None and len(content) > limit:
                    raise response_too_large(limit, len(content), request)
            else:
                await read_capped(response, limit)
        return response


async def read_capped(response: httpx.Response, limit: int | None) -> None:
    """``response.aread()``, but stop (and close it) once the decoded body passes ``limit``.

    Raises:
        ResponseTooLargeError: the body passed ``limit``.
    """
    if limit is None or not _CAN_SET_CONTENT:
        await response.aread()
        if limit is not None and len(response.content) > limit:
            raise response_too_large(limit, len(response.content), response.request)
        return
    chunks: list[bytes] = []
    received = 0
    try:
        async for part in response.aiter_bytes():
            received += len(part)
            if received > limit:
                raise response_too_large(limit, received, response.request)
            chunks.append(part)
    except BaseException:
        await response.aclose()
        raise
    response._content = b"".join(chunks)


def _can_set_content() -> bool:
    """Whether this httpx keeps a read body in ``Response._content`` (checked once, at import)."""
    probe = httpx.Response(200, content=b"probe")
    return (
        getattr(probe, "_content", None) == b"probe"
        and getattr(probe, "_num_bytes_downloaded", None) is not None
    )


_CAN_SET_CONTENT = _can_set_content()


def _read_in_memory(response: httpx.Response, limit: int | None) -> bool:
    """Mark an in-memory, unencoded body as read without httpx's streaming machinery.

    The pipeline hands back bodies buffered in an ``httpx.ByteStream``;
    ``aread()`` still walks three async generators, two chunkers, a decoder and
    three context managers for them (a fifth of a request's CPU time). When
    no ``Content-Encoding`` needs decoding, the raw bytes *are* the content,
    so this leaves the response as ``aread()`` would: content set, stream
    consumed, closed. It sets httpx's private ``_content`` (there is no public
    setter), so it is only used when the import-time probe found that httpx
    keeps the body there; otherwise, and for any other response, it returns
    ``False`` and the caller reads the body the public way.
    """
    stream = response.stream
    if (
        not _CAN_SET_CONTENT
        or type(stream) is not httpx.ByteStream  # a subclass may iterate differently
        or response.is_stream_consumed
        or response.is_closed
    ):
        return False
    for key, _ in response.headers.raw:
        if key.lower() == b"content-encoding":
            return False  # httpx's decoders must run
    body = b"".join(stream)  # ByteStream iterates its bytes synchronously (public API)
    if limit is not None and len(body) > limit:
        raise response_too_large(limit, len(body), response.request)
    response._content = body
    response._num_bytes_downloaded = len(body)
    response.is_stream_consumed = True
    response.is_closed = True  # what aread()'s aclose() does; a ByteStream has nothing to close
    return True
