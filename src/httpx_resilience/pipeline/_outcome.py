"""What a request carries in and out of the pipeline, and the facts read from it.

The outcome record (:class:`ResilienceInfo`, ``response.extensions["resilience"]``),
the key per-host policies use, whether a body can be sent again (or by two
hedged copies at once), and reading a response body inside the attempt,
within its size cap. Plain functions and a frozen record: no state, no I/O
but :func:`buffer_response`'s read (and :func:`is_replayable`'s rewinding of
multipart files).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from typing import Any

import httpx

from ..exceptions import InvalidURLError, ResponseTooLargeError
from ..transports._url import check_url
from ._timeout import disarm

__all__ = [
    "EXTENSION_KEY",
    "ResilienceInfo",
    "buffer_response",
    "checked_host_key",
    "describe",
    "host_key",
    "is_replayable",
    "is_shareable",
    "leave_unread",
    "new_info",
    "response_too_large",
]

# The one namespaced extension key: per-request overrides in, ResilienceInfo out.
EXTENSION_KEY = "resilience"


@dataclass(frozen=True, slots=True)
class ResilienceInfo:
    """What happened to one logical request: ``response.extensions["resilience"]``.

    Attributes:
        attempts: attempts made (hedges included).
        elapsed: seconds from the start of the pipeline to the final response.
        total_wait: seconds spent sleeping between attempts and waiting for the limiter.
        request_id: the ``X-Request-Id`` sent (the same on every attempt).
        breaker_state: the breaker's state after the request, if there is a breaker.
        retry_after: the last ``Retry-After`` the server gave, in seconds.
        exhausted: the final response is a retryable status that was not retried further.
        stop_reason: why retrying stopped: ``"attempts"``, ``"budget"``,
            ``"deadline"`` or ``"retry_after_too_long"``; ``None`` when it did not need to.
        hedges: hedged attempts started.
        attempts_with_hedges: attempts plus hedges: requests sent upstream.
        fallback: the response is the fallback's: the request failed (see
            :class:`~httpx_resilience.Fallback`).
        fallback_error: the class name of the failure the fallback answered.
    """

    attempts: int
    elapsed: float
    total_wait: float
    request_id: str | None
    breaker_state: str | None = None
    retry_after: float | None = None
    exhausted: bool = False
    stop_reason: str | None = None
    hedges: int = 0
    attempts_with_hedges: int = 0
    fallback: bool = False
    fallback_error: str | None = None


# ResilienceInfo's slot setters: a frozen dataclass's __init__ sets each field
# through object.__setattr__, a visible share of the pipeline's cost per
# request; new_info sets the slots directly (a test compares the results).
(
    _set_attempts, _set_elapsed, _set_total_wait, _set_request_id, _set_breaker_state,
    _set_retry_after, _set_exhausted, _set_stop_reason, _set_hedges, _set_with_hedges,
    _set_fallback, _set_fallback_error,
) = (getattr(ResilienceInfo, f.name).__set__ for f in fields(ResilienceInfo))


def new_info(
    attempts: int,
    elapsed: float,
    total_wait: float,
    request_id: str | None,
    breaker_state: str | None,
    retry_after: float | None,
    exhausted: bool,
    stop_reason: str | None,
    hedges: int,
) -> ResilienceInfo:
    """The :class:`ResilienceInfo` these values give (``attempts_with_hedges`` is the sum)."""
    info: ResilienceInfo = object.__new__(ResilienceInfo)
    _set_attempts(info, attempts)
    _set_elapsed(info, elapsed)
    _set_total_wait(info, total_wait)
    _set_request_id(info, request_id)
    _set_breaker_state(info, breaker_state)
    _set_retry_after(info, retry_after)
    _set_exhausted(info, exhausted)
    _set_stop_reason(info, stop_reason)
    _set_hedges(info, hedges)
    _set_with_hedges(info, attempts + hedges)
    _set_fallback(info, False)
    _set_fallback_error(info, None)
    return info


def is_replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent again exactly as it was sent the first time.

    * In memory (bytes, ``json=``, a form): yes.
    * A stream (an async iterator): only while unread (the attempt failed
      before the body left); its bytes are gone once read.
    * Multipart: httpx's encoder reads every file part from position 0 on each
      attempt, the first included. So it is replayable when every file part is
      ``bytes``/``str`` or a seekable file; those files are put back at 0 here,
      where the first attempt read them from. A part that cannot seek (a pipe,
      a socket, an object with only ``read()``) would be re-read from where the
      first attempt left it: an empty part, so such a body is not replayable.
    * Anything else (a sync iterator, a stream of a kind not known here): no.
    """
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    if type(stream).__name__ == "MultipartStream":
        files = _file_parts(stream)
        if files is None or not all(_seekable(f) for f in files):
            return False
        try:
            for f in files:
                f.seek(0)
        except (OSError, ValueError):  # a closed file, or a seek that failed after all
            return False
        return True
    return not getattr(stream, "_is_stream_consumed", True)


def is_shareable(request: httpx.Request) -> bool:
    """Whether copies of the request may send its body at the same time (hedging).

    Only a body in memory: copies racing over one file, iterator or pipe would
    each send part of it.
    """
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    return type(stream).__name__ == "MultipartStream" and _file_parts(stream) == []


def _file_parts(stream: object) -> list[Any] | None:
    """A multipart body's file objects (not its ``bytes``/``str`` parts); ``None`` if unknown."""
    fields = getattr(stream, "fields", None)
    if not isinstance(fields, list):
        return None  # an httpx that lays multipart out differently: assume the worst
    files = [getattr(f, "file", None) for f in fields if hasattr(f, "file")]
    return [f for f in files if not isinstance(f, (bytes, str))]


def _seekable(f: Any) -> bool:
    """Whether a file object can be put back where it was (``seekable()``, else seek and tell)."""
    seekable = getattr(f, "seekable", None)
    if callable(seekable):
        try:
            return bool(seekable())
        except (OSError, ValueError):  # a closed file
            return False
    return callable(getattr(f, "seek", None)) and callable(getattr(f, "tell", None))


def host_key(url: httpx.URL) -> str:
    """The key that per-host policies use: ``host`` or ``host:port``."""
    port = url.port
    return f"{url.host}:{port}" if port is not None else url.host


def checked_host_key(url: httpx.URL, checked: set[str]) -> str:
    """:func:`host_key`, once the URL's origin passed :func:`check_url`.

    ``checked`` holds the host keys already found good (for http and https
    the verdict depends on the host and port only), so a known origin costs
    one set lookup; it is cleared when it grows past 1024 keys.

    Raises:
        InvalidURLError: no connection can be made to the URL's origin.
    """
    try:
        key = host_key(url)
    except UnicodeError as exc:  # an xn-- label that is not valid punycode
        check_url(url)
        host = url.raw_host.decode("ascii", "replace")[:80]
        raise InvalidURLError(
            f"the host {host!r} of the URL is not a valid internationalised name ({exc})",
            hint="check the xn-- labels of the host",
        ) from exc
    if key not in checked:
        check_url(url)
        if url.scheme in ("http", "https"):
            if len(checked) >= 1024:
                checked.clear()
            checked.add(key)
    return key


async def buffer_response(
    response: httpx.Response,
    limit: int | None,
    request: httpx.Request,
    shield: bool = False,
    scope: object = None,
) -> httpx.Response:
    """Read the raw body now (inside the attempt) and put it back as an in-memory stream.

    Reading here makes an error in the middle of the body a retryable read
    failure and lets the attempt timeout cover the body. The raw (still
    encoded) bytes are kept, so httpx decodes them once as usual, and the
    response stays unread so httpx's client times and reads it as always.
    The caller checks :func:`leave_unread` first: a body already in memory
    (``httpx.ByteStream``, or read by the inner transport, like
    ``httpx.MockTransport``'s) needs no reading.

    Args:
        response: the inner transport's response, its body unread.
        limit: the most bytes to hold (``None``: no cap).
        request: the request, for the error.
        shield: close the stream in a task of its own that a cancellation does
            not interrupt. For the copies of a hedged request, whose losers are
            cancelled on purpose: a cancel landing while httpcore closes a
            response (its state lock's checkpoint) would leave the request
            registered in httpcore's pool, a slot lost for good.
        scope: the attempt's :func:`~._timeout.timeout_scope`, disarmed once the
            body is read (or reading failed) so its expiry cannot cut the close
            short either.

    Raises:
        ResponseTooLargeError: the body passed ``limit``; reading stopped at the
            chunk that passed it and the response (its connection) was closed.
    """
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    chunks: list[bytes] = []
    received = 0
    parts = stream.__aiter__()
    try:
        async for chunk in parts:
            received += len(chunk)
            if limit is not None and received > limit:
                raise response_too_large(limit, received, request)
            chunks.append(chunk)
    finally:
        if scope is not None:
            disarm(scope)  # the attempt's timeout must not cut the close short either
        if shield:
            closing = asyncio.ensure_future(_close(parts, stream))
            closing.add_done_callback(_retrieve)  # a failure after we left is not "never retrieved"
            await asyncio.shield(closing)
        else:
            await _close(parts, stream)
    response.stream = httpx.ByteStream(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    return response


async def _close(parts: AsyncIterator[bytes], stream: httpx.AsyncByteStream) -> None:
    close = getattr(parts, "aclose", None)
    if close is not None:
        await close()
    await stream.aclose()


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


def response_too_large(
    limit: int, received: int, request: httpx.Request | None
) -> ResponseTooLargeError:
    """The error for a body that passed its cap: names the cap and how to raise it."""
    return ResponseTooLargeError(
        f"Response body passed max_response_bytes={limit} ({received} bytes read); "
        "reading stopped and the connection was closed",
        limit=limit,
        received=received,
        request=request,
        hint="Raise the cap (ClientConfig(max_response_bytes=...), or "
        "max_response_bytes= on the request; None for no cap) or stream the response",
    )


def leave_unread(response: httpx.Response) -> bool:
    """Whether the attempt ends at the headers, the body left to the caller unread.

    A body already in memory needs no reading, and an event stream
    (``Content-Type: text/event-stream``: server-sent events, the streamed
    answers of LLM APIs) must reach its reader as it is sent, not after the
    last event: it is the caller's, as a marked stream is (not capped, not
    retried once the headers came). The header is found in the raw list
    without decoding every header (most responses have a handful).
    """
    if response.is_stream_consumed or isinstance(response.stream, httpx.ByteStream):
        return True
    for name, value in response.headers.raw:
        if len(name) == 12 and name.lower() == b"content-type":
            return value[:17].lower() == b"text/event-stream"
    return False


def describe(exc: BaseException) -> str:
    """``"ReadTimeout: timed out"``: the error's class and message, for logs and errors."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
