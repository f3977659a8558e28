"""Classifying an attempt's outcome: does it end the request, and what will the decision need?

The retry loop hands each outcome to one of two functions:

Both first tell the adaptive throttle (when there is one) what the attempt got.

* :func:`classify_error` for an exception: a timeout that the total deadline
  imposed is the deadline's error and ends the request; an exception the
  policy does not retry for this method ends it too; any other is recorded
  (``last_exc``, ``cause``) for the retry decision.
* :func:`is_final` for a response: the limiter reads its pacing headers, a
  ``Retry-After`` the policy honours is recorded; a status the policy does
  not retry ends the request (its ``Retry-After`` pauses the limiter, within
  ``max_delay``), any other is recorded for the retry decision (which
  pauses the limiter after deciding).

Both write only the outcome fields of the :class:`RequestState` and report
through the :class:`Reporter` they are given.
"""

from __future__ import annotations

import httpx

from ..exceptions import HTTPClientError, RequestTimeoutError, RetryExhaustedError
from ..observe.redact import scrub_exception, scrub_text
from ..policies.retry import classify_exception
from ._attempt import pause_limiter
from ._httpx_errors import error_class, httpx_class, retry_exhausted_error
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
        RequestTimeoutError: the total deadline passed during the attempt
            (also of the attempt's httpx timeout class; after retries, also a
            :class:`RetryExhaustedError`).
        RetryExhaustedError: after retries, an exception the policy does not
            retry that is a failure of the transport (also of its httpx class).
        Exception: ``exc`` itself, when the policy does not retry it.
    """
    if s.throttle is not None:
        s.throttle.record_error(s.key, exc)
    # Once, before anything shows it (events, logs, the give-up error built from
    # ``s.cause``): an illegal header value quoted by the transport is hidden.
    scrub_exception(exc)
    if phase == "total" and isinstance(exc, httpx.TimeoutException):
        # A clamped per-phase timeout firing means it is the deadline that passed.
        raise _deadline_error(s, exc, reporter)
    if isinstance(exc, RequestTimeoutError) and exc.phase == "total":
        exc.attempts = s.attempt  # the deadline of a pipeline nested in this one
        reporter.fail(s, exc)
        raise exc
    # A pipeline nested in this one has retried already: its give-up is final.
    retried = isinstance(exc, RetryExhaustedError)
    retryable = not retried and s.policy.should_retry_exception(
        exc, s.request.method, idempotency_key=s.idempotent
    )
    s.last_exc = exc
    s.status_code = s.server_delay = None
    reporter.attempt_failed(s, duration, exc)
    if not retryable:
        cause = _describe(exc)
        reporter.fail(s, exc, give_up=f"{cause} (not retryable)")
        if s.attempt > 1 and not retried and httpx_class(exc) is not None:
            raise _not_retried(s, exc, cause) from exc
        raise exc
    s.cause = _describe(exc)


def _describe(exc: BaseException) -> str:
    """``"ReadTimeout: timed out"``; ours without the URL and hint that the wrapper repeats."""
    if isinstance(exc, HTTPClientError):
        return f"{type(exc).__name__}: {exc.message}"
    return describe(exc)


def _not_retried(s: RequestState, exc: Exception, cause: str) -> RetryExhaustedError:
    """The give-up error of a failure the policy does not retry, after retries."""
    method = s.request.method
    if classify_exception(exc) == "read":
        why = f"{method} is not retried after a failure that may have reached the server"
        hint = f"Send an Idempotency-Key, or add {method} to retry_methods, to retry it"
    else:
        why, hint = "this failure is not retried", "Check the request and the upstream"
    return retry_exhausted_error(
        f"Request failed after {s.attempt} attempt(s): {cause}; {why}",
        last_error=exc,
        attempts=s.attempt,
        retry_after=s.retry_after,
        request=s.request,
        hint=hint,
    )


def _deadline_error(s: RequestState, exc: Exception, reporter: Reporter) -> Exception:
    """The error of an attempt the total deadline cut short (``exc`` timed out).

    It is a :class:`RequestTimeoutError` with ``phase="total"`` that is also
    the attempt's httpx timeout class (``httpx.ReadTimeout`` when httpx's
    clamped read timeout fired); after retries, also a :class:`RetryExhaustedError`.
    """
    total = s.total_timeout or 0.0
    attempt = s.attempt
    s.last_exc = exc
    if attempt > 1:
        err: Exception = retry_exhausted_error(
            f"Total deadline of {total:g} s passed during attempt {attempt} "
            f"({_describe(exc)})",
            last_error=exc,
            attempts=attempt,
            deadline=True,
            timeout=total,
            retry_after=s.retry_after,
            request=s.request,
        )
    elif isinstance(exc, RequestTimeoutError) and exc.phase == "total":
        exc.attempts = attempt  # the pipeline's own deadline scope fired
        reporter.fail(s, exc)
        return exc
    else:
        err = error_class(httpx_class(exc) or httpx.TimeoutException, deadline=True)(
            f"Total deadline of {total:g} s passed during attempt {attempt} "
            f"({type(exc).__name__})",
            timeout=total,
            phase="total",
            attempts=attempt,
            request=s.request,
        )
    err.__cause__ = exc
    reporter.fail(s, err)
    return err


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
    if s.throttle is not None:
        s.throttle.record_status(s.key, status_code)
    if limiter is not None:
        limiter.observe_response(response)  # RateLimit-* header pacing, if enabled
    server_delay = None
    if policy.retry_after_for(status_code):
        server_delay = reporter.retry_after(response, s.request)
        if server_delay is not None:
            s.retry_after = server_delay
    s.server_delay = server_delay  # the retry loop pauses the limiter for it, clamped
    if not policy.should_retry_status(status_code, s.request.method, idempotency_key=s.idempotent):
        if s.tracker is not None:
            s.tracker.observe(duration)
        if limiter is not None and server_delay is not None:
            pause_limiter(s, limiter, None)  # within max_delay; none in testing mode
        return True
    s.status_code, s.server_delay, s.last_exc = status_code, server_delay, None
    # A hostile reason phrase may quote a credential back: scrubbed like an error text.
    s.cause = scrub_text(f"HTTP {status_code} {response.reason_phrase}".rstrip())
    reporter.attempt_failed(s, duration, None)
    return False
