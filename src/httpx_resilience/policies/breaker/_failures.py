"""What a circuit breaker counts as a failure: exception types, statuses, a predicate.

:class:`FailureRules` validates a breaker's ``expected_exception``,
``failure_statuses`` and ``failure_predicate`` once and then classifies
outcomes purely (no clock, no state), so a breaker's per-key children share
one instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import httpx

from ...exceptions import (
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    InvalidRequestError,
    RateLimiterTimeout,
    RequestNotReplayableError,
    ResponseTooLargeError,
)

__all__ = ["FailurePredicate", "FailureRules"]

FailurePredicate = Callable[[httpx.Response | None, BaseException | None], "bool | None"]
"""``(response, exception) -> True | False | None``; ``None`` defers to the default rules."""

# Our own refusals say nothing about the upstream's health, and a cancelled
# call has no outcome; a configuration error is the caller's bug, not the
# upstream's.
_NEVER_FAILURES: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    CircuitBreakerOpenError,
    RateLimiterTimeout,
    BulkheadFullError,
    ConfigurationError,
    # the request's or the caller's limits, not the upstream's health
    InvalidRequestError,
    RequestNotReplayableError,
    ResponseTooLargeError,
)


class FailureRules:
    """A breaker's validated failure rules; see :class:`~httpx_resilience.CircuitBreaker`.

    Args:
        expected_exception: exception type(s) that count as failures, besides
            ``httpx.TransportError``.
        failure_statuses: the failure status codes; ``None`` means every 5xx.
        failure_predicate: consulted first; ``None`` from it defers to the rules.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    __slots__ = ("expected", "failure_types", "predicate", "statuses")

    def __init__(
        self,
        expected_exception: type[BaseException] | tuple[type[BaseException], ...],
        failure_statuses: Collection[int] | None,
        failure_predicate: FailurePredicate | None,
    ) -> None:
        expected = (
            expected_exception if isinstance(expected_exception, tuple) else (expected_exception,)
        )
        if not expected or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in expected
        ):
            raise ConfigurationError(
                "expected_exception must be an exception class or a non-empty tuple of them, "
                f"got {expected_exception!r}",
                field="expected_exception",
            )
        statuses: frozenset[int] | None = None
        if failure_statuses is not None:
            statuses = frozenset(failure_statuses)
            bad = [
                s
                for s in statuses
                if not isinstance(s, int) or isinstance(s, bool) or not 100 <= s <= 599
            ]
            if bad:
                raise ConfigurationError(
                    f"failure_statuses must be HTTP status codes in 100..599, got {sorted(bad)!r}",
                    field="failure_statuses",
                )
        if failure_predicate is not None and not callable(failure_predicate):
            raise ConfigurationError(
                "failure_predicate must be callable(response, exception) -> bool | None",
                field="failure_predicate",
            )
        self.expected: tuple[type[BaseException], ...] = expected
        self.failure_types: tuple[type[BaseException], ...] = (httpx.TransportError, *expected)
        self.statuses = statuses
        self.predicate = failure_predicate

    def is_failure_response(self, response: httpx.Response) -> bool:
        """Whether ``response`` counts as a failure (the predicate first, then the status)."""
        if self.predicate is not None:
            verdict = self.predicate(response, None)
            if verdict is not None:
                return bool(verdict)
        return self.is_failure_status(response.status_code)

    def is_failure_status(self, status: int) -> bool:
        """Whether ``status`` is in ``failure_statuses``, or any 5xx by default."""
        statuses = self.statuses
        if statuses is None:
            return 500 <= status <= 599
        return status in statuses

    def is_failure_exception(self, exc: BaseException) -> bool:
        """Whether ``exc`` counts as a failure; see :meth:`CircuitBreaker.is_failure_exception`."""
        if isinstance(exc, _NEVER_FAILURES):
            return False
        if self.predicate is not None:
            verdict = self.predicate(None, exc)
            if verdict is not None:
                return bool(verdict)
        if not isinstance(exc, self.failure_types):
            return False
        if isinstance(exc, httpx.HTTPStatusError):
            return self.is_failure_status(exc.response.status_code)
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and not isinstance(status, bool):
            return self.is_failure_status(status)
        return True
