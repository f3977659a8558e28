"""Frozen event records emitted by the pipeline, and the observer hook.

An observer is any callable taking one event. Observers are called inline;
one that raises is logged and ignored, so observation never breaks a request.
When no observer is registered, no event object is built.

Events carry no secret: URLs are redacted by the pipeline, and the free texts
(an attempt's ``error``, a retry's ``reason``) are scrubbed by the event
itself (:func:`~httpx_resilience.observe.redact.scrub_text`), so an observer
of your own can show them as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .redact import scrub_exception, scrub_text

__all__ = [
    "AttemptFailed",
    "AttemptStarted",
    "BreakerTransitioned",
    "BudgetRefused",
    "BulkheadRejected",
    "Event",
    "FallbackServed",
    "HedgeFired",
    "LimiterWaited",
    "Observer",
    "RequestFinished",
    "RetryScheduled",
    "ThrottleRejected",
    "emit",
]

_log = logging.getLogger("httpx_resilience.observe")


@dataclass(frozen=True, slots=True)
class _RequestEvent:
    """Fields every per-request event carries (the URL is already redacted)."""

    request_id: str | None
    method: str
    url: str
    host: str


@dataclass(frozen=True, slots=True)
class _AttemptEvent(_RequestEvent):
    """Fields of events about one attempt (``attempt`` counts from 1)."""

    attempt: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class AttemptStarted(_AttemptEvent):
    """An attempt (the first, a retry) is about to be sent.

    ``headers`` are the live request headers, so a tracing observer can inject
    ``traceparent``; they carry the credentials: show them only through
    :meth:`Redactor.headers <httpx_resilience.observe.redactor.Redactor.headers>`.
    ``attempt`` counts from 1 (``resend_count`` is ``attempt - 1``).
    """

    headers: Any = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptFailed(_AttemptEvent):
    """One attempt failed (an exception or a retryable/failing status).

    ``error`` is the exception's text, scrubbed of secrets (a protocol error
    quoting a header value, say).
    """

    duration: float
    status_code: int | None = None
    error_type: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.error:
            object.__setattr__(self, "error", scrub_text(self.error))


@dataclass(frozen=True, slots=True)
class RetryScheduled(_AttemptEvent):
    """A retry will be made after ``delay`` seconds; ``reason`` is scrubbed of secrets."""

    delay: float
    reason: str
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.reason:
            object.__setattr__(self, "reason", scrub_text(self.reason))


@dataclass(frozen=True, slots=True)
class RequestFinished(_RequestEvent):
    """A logical request ended: ``outcome`` is ``"success"`` or ``"failure"``."""

    attempts: int
    elapsed: float
    outcome: str
    status_code: int | None = None
    error_type: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class BreakerTransitioned:
    """A circuit breaker changed state."""

    name: str
    old_state: str
    new_state: str
    reason: str


@dataclass(frozen=True, slots=True)
class LimiterWaited:
    """A request waited ``waited`` seconds for a rate-limiter permit."""

    host: str
    waited: float
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class BulkheadRejected:
    """The bulkhead refused a request."""

    host: str
    max_concurrent: int
    max_queue: int
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class HedgeFired(_RequestEvent):
    """A hedged attempt was started because the first was still running after ``delay``."""

    hedge_number: int
    delay: float


@dataclass(frozen=True, slots=True)
class BudgetRefused(_RequestEvent):
    """The retry budget of ``host`` refused to pay for a retry or a hedge.

    ``spend`` is ``"retry"`` (the request ends with its last failure) or
    ``"hedge"`` (no further copy is started for this attempt).
    """

    spend: str


@dataclass(frozen=True, slots=True)
class FallbackServed:
    """A fallback answered a request that failed (an event for observers).

    ``error_type`` is the class name of the failure, ``error`` its text
    (scrubbed of secrets); ``status_code`` the status of the fallback's response.
    """

    request_id: str | None
    method: str
    url: str
    host: str
    error_type: str
    error: str
    status_code: int

    def __post_init__(self) -> None:
        if self.error:
            object.__setattr__(self, "error", scrub_text(self.error))


@dataclass(frozen=True, slots=True)
class ThrottleRejected:
    """The adaptive throttle refused an attempt locally (an event for observers)."""

    host: str
    probability: float
    requests: int
    accepts: int
    attempt: int
    request_id: str | None = None

Event = (
    AttemptStarted
    | AttemptFailed
    | RetryScheduled
    | RequestFinished
    | BreakerTransitioned
    | LimiterWaited
    | BulkheadRejected
    | HedgeFired
    | BudgetRefused
    | FallbackServed
    | ThrottleRejected
)
Observer = Callable[[Event], None]


def emit(observers: Sequence[Observer], event: Event) -> None:
    """Deliver ``event`` to each observer; an observer that raises is logged and skipped."""
    for obs in observers:
        try:
            obs(event)
        except Exception as exc:  # an observer must never break a request
            scrub_exception(exc)  # its traceback is logged: it may quote the event's data
            _log.exception("observer %r raised on %s; ignored", obs, type(event).__name__)
