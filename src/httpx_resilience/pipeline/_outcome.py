"""What a request carries in and out of the pipeline, and the facts read from it.

The outcome record (:class:`ResilienceInfo`, ``response.extensions["resilience"]``),
the key per-host policies use, whether a body can be sent again, and reading
a response body inside the attempt. Plain functions and a frozen record: no
state, no I/O but :func:`buffer_response`'s read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import httpx

__all__ = [
    "EXTENSION_KEY",
    "ResilienceInfo",
    "buffer_response",
    "describe",
    "host_key",
    "in_memory",
    "is_replayable",
    "new_info",
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


# ResilienceInfo's slot setters: a frozen dataclass's __init__ sets each field
# through object.__setattr__, a visible share of the pipeline's cost per
# request; new_info sets the slots directly (a test compares the results).
(
    _set_attempts, _set_elapsed, _set_total_wait, _set_request_id, _set_breaker_state,
    _set_retry_after, _set_exhausted, _set_stop_reason, _set_hedges, _set_with_hedges,
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
    return info


def is_replayable(request: httpx.Request) -> bool:
    """Whether the body can be sent again (bytes, or a stream not yet consumed)."""
    stream = request.stream
    if isinstance(stream, httpx.ByteStream):
        return True
    if type(stream).__name__ == "MultipartStream":
        return True  # httpx re-renders multipart bodies, seeking file fields back to 0
    return not getattr(stream, "_is_stream_consumed", True)


def host_key(url: httpx.URL) -> str:
    """The key that per-host policies use: ``host`` or ``host:port``."""
    port = url.port
    return f"{url.host}:{port}" if port is not None else url.host


async def buffer_response(response: httpx.Response) -> httpx.Response:
    """Read the raw body now (inside the attempt) and put it back as an in-memory stream.

    Reading here makes an error in the middle of the body a retryable read
    failure and lets the attempt timeout cover the body. The raw (still
    encoded) bytes are kept, so httpx decodes them once as usual, and the
    response stays unread so httpx's client times and reads it as always.
    The caller checks :func:`in_memory` first: a body already in memory
    (``httpx.ByteStream``, or read by the inner transport, like
    ``httpx.MockTransport``'s) needs no reading.
    """
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    try:
        chunks = [chunk async for chunk in stream]
    finally:
        await stream.aclose()
    response.stream = httpx.ByteStream(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    return response


def in_memory(response: httpx.Response) -> bool:
    """Whether the body is already in memory (or consumed): nothing for :func:`buffer_response`."""
    return response.is_stream_consumed or isinstance(response.stream, httpx.ByteStream)


def describe(exc: BaseException) -> str:
    """``"ReadTimeout: timed out"``: the error's class and message, for logs and errors."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
