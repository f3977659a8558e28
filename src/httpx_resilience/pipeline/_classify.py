"""Classifying an attempt's outcome: does it end the request, and what will the decision need?

The retry loop hands each outcome to one of two functions:

* :func:`classify_error` for an exception: a timeout that the total deadline
  imposed is the deadline's error and ends the request; an exception the
  policy does not retry for this method ends it too; any other is recorded
  (``last_exc``, ``cause``) for the retry decision.
* :func:`is_final` for a response: the limiter reads its pacing headers, a
  ``Retry-After`` the policy honours is recorded (and pauses the limiter); a
  status the policy does not retry ends the request, any other is recorded
  for the retry decision.

Both write only the outcome fields of the :class:`RequestState` and report
through the :class:`Reporter` they are given.
"""

from __future__ import annotations

import httpx

from ..exceptions import RequestTimeoutError
from ._attempt import total_deadline_error
from ._outcome import describe
from ._report import Reporter
from ._state import RequestState

__all__ = ["classify_error", "is_final"]


def classify_error(
    s: RequestState, exc: Exception, duration: float, phase: str, reporter: Reporter
) -> None:
    """Record an attempt's exception; raise it (or the deadline's) when it ends the request.

    Args:
        s: the request's state; its outcome fields are set.
        exc: what the attempt raised.
        duration: the attempt's seconds.
        phase: ``"total"`` when the attempt ran on what was left of the deadline.
        reporter: reports the failed attempt, and the request's end.

    Raises:
        RequestTimeoutError: the total deadline passed during the attempt.
        Exception: ``exc`` itself, when the policy does not retry it.
    """
    # A clamped per-phase timeout firing means it is the deadline that passed.
    if (
        phase == "total"
        and isinstance(exc, httpx.TimeoutException)
        and not (isinstance(exc, RequestTimeoutError) and exc.phase == "total")
    ):
        exc = total_deadline_error(exc, s.total_timeout, s.attempt, s.request)
    if isinstance(exc, RequestTimeoutError) and exc.phase == "total":
        exc.attempts = s.attempt
        reporter.fail(s, exc)
        raise exc
    retryable = s.policy.should_retry_exception(exc, s.request.method, idempotency_key=s.idempotent)
    s.last_exc = exc
    s.status_code = s.server_delay = None
    reporter.attempt_failed(s, duration, exc)
    if not retryable:
        reporter.fail(s, exc, give_up=f"{describe(exc)} (not retryable)")
        raise exc
    s.cause = describe(exc)


def is_final(
    s: RequestState, response: httpx.Response, duration: float, reporter: Reporter
) -> bool:
    """Read an attempt's response (pacing, ``Retry-After``); whether it ends the request.

    Args:
        s: the request's state; its outcome fields are set when the status is retried.
        response: the attempt's response (its body already read, unless streaming).
        duration: the attempt's seconds (adaptive hedging learns from a final one).
        reporter: reads ``Retry-After`` (warning on a bad one) and reports a failed attempt.
    """
    status_code = response.status_code
    limiter, policy = s.limiter, s.policy
    if limiter is not None:
        limiter.observe_response(response)  # RateLimit-* header pacing, if enabled
    server_delay = None
    if policy.retry_after_for(status_code):
        server_delay = reporter.retry_after(response, s.request)
        if server_delay is not None:
            s.retry_after = server_delay
            if limiter is not None and server_delay > 0:
                limiter.pause(server_delay)
    if not policy.should_retry_status(status_code, s.request.method, idempotency_key=s.idempotent):
        if s.tracker is not None:
            s.tracker.observe(duration)
        return True
    s.status_code, s.server_delay, s.last_exc = status_code, server_delay, None
    s.cause = f"HTTP {status_code} {response.reason_phrase}".rstrip()
    reporter.attempt_failed(s, duration, None)
    return False
