"""One attempt on the sync path: breaker → attempt timeout → sync inner transport; its waits.

The sync twin of :mod:`._attempt`, for ``ResilientTransport.handle_request``
(``httpx.Client``). A thread cannot be cancelled, so the attempt timeout is
kept without a cancellation scope:

* httpx's per-phase timeouts (connect, write, read, pool) are clamped to the
  attempt's budget, which is already what is left of the total deadline when
  that is shorter (:func:`~._attempt.clamp_phases`, shared with the async path);
* the attempt's end is checked after the headers and after every chunk of
  the body, which is read here inside the attempt, within ``max_response_bytes``;
  an attempt past its end raises the same :class:`RequestTimeoutError` the
  async scope raises (:func:`~._attempt.attempt_timeout_error`).

The attempt's end is read on the real monotonic clock, as the async scope's
is (the event loop's). Every wait before an attempt (the bulkhead, the
limiter, per-attempt signing) ends at the deadline through
:func:`within_deadline_sync`. What is decided, not waited for, is shared
with the async path: :func:`~._attempt.check_replayable`,
:func:`~._attempt.deadline_error`, the breaker's permit and its outcome rules
(``CircuitBreaker.call_sync``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx

from ..clock import Clock
from ..observe.redact import scrub_exception
from ._attempt import attempt_timeout_error, check_replayable, clamp_phases, deadline_error
from ._outcome import leave_unread, response_too_large
from ._state import RequestState

__all__ = ["SyncAttemptRunner", "prepare_retry_sync", "within_deadline_sync"]

T = TypeVar("T")


class SyncAttemptRunner:
    """Sends one attempt of a request through the breaker and the attempt timeout, from a thread.

    Args:
        inner: the sync transport that sends (``httpx.HTTPTransport``, a mock...).
        clock: the transport's clock, which bounds the attempt.
    """

    __slots__ = ("clock", "inner")

    def __init__(self, inner: httpx.BaseTransport, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    def run(self, s: RequestState, timeout: float | None, phase: str) -> httpx.Response:
        """One attempt: breaker permit → :meth:`send` → the breaker records the outcome."""
        breaker = s.breaker
        if breaker is None:
            return self.send(s, timeout, phase)
        return breaker.call_sync(self.send, s, timeout, phase)

    def send(self, s: RequestState, timeout: float | None, phase: str) -> httpx.Response:
        """One attempt through the sync inner transport, within ``timeout`` seconds."""
        request = s.request
        if timeout is None:
            response = self.inner.handle_request(request)
            if not s.stream_mode and not leave_unread(response):
                read_body(response, s.max_response_bytes, request, None, self.clock)
            return response
        clamp_phases(request, timeout)
        # The async scope's margin: the clamped per-phase timeouts fire first.
        monotonic = self.clock.monotonic
        end = monotonic() + timeout * 1.01 + 0.002
        try:
            response = self.inner.handle_request(request)
            if monotonic() > end:  # the phases each fit, their sum did not
                response.close()
                raise TimeoutError
            if not s.stream_mode and not leave_unread(response):
                read_body(response, s.max_response_bytes, request, end, self.clock)
        except TimeoutError as exc:
            raise attempt_timeout_error(s, timeout, phase) from exc
        return response


def read_body(
    response: httpx.Response,
    limit: int | None,
    request: httpx.Request,
    end: float | None,
    clock: Clock,
) -> None:
    """Read the raw body now (inside the attempt) and put it back as an in-memory stream.

    As :func:`~._outcome.buffer_response` does on the async path: the raw
    bytes are kept (httpx decodes them once, as usual) and the response stays
    unread for httpx's client.

    Raises:
        ResponseTooLargeError: the body passed ``limit``; the response was closed.
        TimeoutError: ``clock`` passed ``end`` between two chunks.
    """
    stream = response.stream
    assert isinstance(stream, httpx.SyncByteStream)
    chunks: list[bytes] = []
    received = 0
    try:
        for chunk in stream:
            received += len(chunk)
            if limit is not None and received > limit:
                raise response_too_large(limit, received, request)
            if end is not None and clock.monotonic() > end:
                raise TimeoutError
            chunks.append(chunk)
    finally:
        stream.close()
    response.stream = httpx.ByteStream(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def within_deadline_sync(
    wait: Callable[[float], T], remaining: float, s: RequestState, what: str
) -> T:
    """``wait(remaining)``, a blocking wait that raises ``TimeoutError`` when it runs out.

    The sync :func:`~._attempt.within_deadline`: the bulkhead's and the
    limiter's waits take the seconds left of the deadline as their ``timeout``.

    Raises:
        RequestTimeoutError: the deadline passed first (``phase="total"``); nothing was taken.
    """
    if remaining <= 0:
        raise deadline_error(s, f"before {what} was reached")
    try:
        return wait(remaining)
    except TimeoutError as exc:
        if type(exc) is not TimeoutError:  # one of ours (a nested deadline): as it is
            raise
        raise deadline_error(s, f"while waiting for {what}") from exc


def prepare_retry_sync(s: RequestState, now: Callable[[], float]) -> None:
    """Before a retry: the body must be replayable; per-attempt auth signs again (sync).

    Raises:
        RequestNotReplayableError: the body cannot be sent again as it was.
        RequestTimeoutError: the deadline passed before signing.
    """
    check_replayable(s)
    auth = s.ext.get("auth")
    if auth is not None and getattr(auth, "per_attempt", False):
        if s.deadline is not None and s.deadline - now() <= 0:
            raise deadline_error(s, "before the credentials were reached")
        try:
            auth.sync_prepare_request(s.request)
        except Exception as exc:  # a provider's message may quote a credential
            scrub_exception(exc)
            raise
