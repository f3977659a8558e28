"""Everything the pipeline tells the outside: events, log lines, the outcome record, errors.

:class:`Reporter` is the retry loop's only voice. It owns the observers (the
hooks that receive :mod:`~httpx_resilience.observe.events` records) and the
``httpx_resilience.retry`` logger, and it ends every request exactly once:
with the :class:`ResilienceInfo` on the response, or with the typed error of
a give-up decision. It reads the per-request :class:`RequestState` it is
handed and changes nothing in it.

Events are built only when an observer is attached, so a pipeline without
observers pays one truth test per report.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NoReturn

import httpx

from ..clock import Clock
from ..exceptions import BulkheadFullError, RequestTimeoutError
from ..observe.events import (
    AttemptFailed,
    AttemptStarted,
    BudgetRefused,
    BulkheadRejected,
    HedgeFired,
    LimiterWaited,
    Observer,
    RequestFinished,
    RetryScheduled,
    emit,
)
from ..observe.redact import redact_url
from ..policies._testing_mode import cap_attempts
from ..policies.retry import parse_retry_after
from ._decision import RetryDecision
from ._httpx_errors import retry_exhausted_error
from ._outcome import EXTENSION_KEY, host_key, new_info
from ._state import RequestState

__all__ = ["Reporter"]

_log = logging.getLogger("httpx_resilience.retry")


class Reporter:
    """Events, logs and outcomes of :class:`~httpx_resilience.ResilientTransport`.

    Args:
        clock: the time source (elapsed times, ``Retry-After`` dates).
        observers: the event hooks; replaced as a whole when the transport's
            ``observers`` attribute is set.
    """

    __slots__ = ("_clock", "_reported", "observers")

    def __init__(self, clock: Clock, observers: tuple[Observer, ...]) -> None:
        self._clock = clock
        self.observers = observers
        # Requests whose RequestFinished went out already (by id), so that the
        # transport's catch-all does not send a second one.
        self._reported: set[int] = set()

    # -- reading the response ---------------------------------------------------------

    def retry_after(self, response: httpx.Response, request: httpx.Request) -> float | None:
        """The response's ``Retry-After`` in seconds; ``None`` (and a warning) when invalid."""
        value = response.headers.get("retry-after")
        if value is None:
            return None
        try:
            return parse_retry_after(value, self._clock.wall())
        except ValueError:
            _log.warning(
                "Ignoring invalid Retry-After %r from %s %s; using the computed backoff",
                value[:64], request.method, redact_url(request.url),
                extra={"retry_after": value[:64], "url": redact_url(request.url)},
            )
            return None

    # -- one attempt ------------------------------------------------------------------

    def attempt_started(self, s: RequestState) -> None:
        if self.observers:
            emit(
                self.observers,
                AttemptStarted(*_attempt(s), s.request.headers, s.ext.get("service")),
            )

    def attempt_failed(self, s: RequestState, duration: float, exc: BaseException | None) -> None:
        if self.observers:
            error = (type(exc).__name__, str(exc)) if exc is not None else ()
            emit(self.observers, AttemptFailed(*_attempt(s), duration, s.status_code, *error))

    def limiter_waited(self, s: RequestState, waited: float) -> None:
        if waited > 0 and self.observers:
            emit(self.observers, LimiterWaited(s.key, waited, s.request_id))

    def hedge_fired(self, s: RequestState, n: int, delay: float) -> None:
        request = s.request
        _log.debug(
            "Hedging %s %s: attempt still running after %.3f s, starting hedge %d",
            request.method, redact_url(request.url), delay, n,
        )
        if self.observers:
            emit(
                self.observers,
                HedgeFired(s.request_id, request.method, redact_url(request.url), s.key, n, delay),
            )

    def budget_refused(self, s: RequestState, spend: str) -> None:
        """The retry budget refused a retry (``"retry"``) or a hedge (``"hedge"``)."""
        if self.observers:
            request = s.request
            emit(
                self.observers,
                BudgetRefused(s.request_id, request.method, redact_url(request.url), s.key, spend),
            )

    def bulkhead_rejected(
        self, request: httpx.Request, exc: BulkheadFullError, rid_header: str | None
    ) -> None:
        if self.observers:
            emit(
                self.observers,
                BulkheadRejected(
                    host_key(request.url), exc.max_concurrent, exc.max_queue,
                    request.headers.get(rid_header or "x-request-id"),
                ),
            )

    def retry_scheduled(self, s: RequestState, delay: float) -> None:
        """Announce a retry about to sleep: the warning log line and ``RetryScheduled``."""
        request = s.request
        method = request.method
        _log.warning(
            "Attempt %d/%d failed: %s. Retrying in %.2f s [%s %s]",
            s.attempt, cap_attempts(s.policy.max_attempts), s.cause, delay, method,
            redact_url(request.url),
            extra={
                **self._extra(s),
                "delay": delay,
                "status_code": s.status_code,
                "error_type": type(s.last_exc).__name__ if s.last_exc is not None else None,
            },
        )
        if self.observers:
            emit(self.observers, RetryScheduled(*_attempt(s), delay, s.cause, s.server_delay))

    # -- the end of a request ---------------------------------------------------------

    def finish(
        self,
        s: RequestState,
        response: httpx.Response,
        *,
        exhausted: bool = False,
        stop_reason: str | None = None,
    ) -> httpx.Response:
        """End the request with ``response``: ``RequestFinished`` and the outcome extension."""
        request = s.request
        if s.attempt > 1 and not exhausted:
            _log.info(
                "Succeeded after %d attempts: %s %s -> %d",
                s.attempt, request.method, redact_url(request.url), response.status_code,
                extra=self._extra(s),
            )
        elapsed = self._clock.monotonic() - s.start
        if self.observers:
            self._reported.add(id(request))
            ok = not exhausted and response.status_code < 500
            emit(
                self.observers,
                RequestFinished(
                    s.request_id, request.method, redact_url(request.url), s.key,
                    s.attempt, elapsed, "success" if ok else "failure", response.status_code,
                    None, s.service,
                ),
            )
        response.extensions[EXTENSION_KEY] = new_info(
            s.attempt,
            elapsed,
            s.total_wait,
            s.request_id,
            str(breaker.state.value) if (breaker := s.breaker) is not None else None,
            s.retry_after,
            exhausted,
            stop_reason,
            s.hedges,
        )
        return response

    def fail(self, s: RequestState, exc: BaseException, *, give_up: str | None = None) -> None:
        """End the request with ``exc`` (the caller raises it): ``RequestFinished``, the log."""
        if self.observers:
            request = s.request
            self._reported.add(id(request))
            emit(
                self.observers,
                RequestFinished(
                    s.request_id, request.method, redact_url(request.url), s.key, s.attempt,
                    self._clock.monotonic() - s.start, "failure", None, type(exc).__name__,
                    s.service,
                ),
            )
        if give_up is not None and s.attempt > 1:
            self._log_giveup(s.request, s.attempt, give_up)

    def give_up(
        self, s: RequestState, decision: RetryDecision, response: httpx.Response | None
    ) -> httpx.Response:
        """Act on a decision to stop: return the last response, or raise the typed error.

        A last response is returned marked ``exhausted``. A last exception is
        raised as it is when retries were off; otherwise as a
        :class:`RetryExhaustedError` chained to it that is also of its httpx
        class (``httpx.ReadTimeout``, ``httpx.ConnectError``...), and also a
        :class:`RequestTimeoutError` when it was a timeout or when the
        deadline stopped the loop (see :func:`retry_exhausted_error`).
        """
        stop = decision.stop
        assert stop is not None
        if stop == "budget":
            self.budget_refused(s, "retry")
        if s.attempt == 1 and stop == "attempts":
            # Retries are off: nothing was given up, the outcome is returned as it is.
            if response is not None:
                return self.finish(s, response)
            assert s.last_exc is not None
            self.fail(s, s.last_exc)
            raise s.last_exc
        why = self._why(s, decision)
        self._log_giveup(s.request, s.attempt, f"{s.cause}; giving up: {why}")
        if response is not None:
            return self.finish(s, response, exhausted=True, stop_reason=stop)
        exc = s.last_exc
        assert exc is not None
        self.fail(s, exc)
        if stop == "deadline":
            total = s.total_timeout or 0.0
            raise retry_exhausted_error(
                f"Total deadline of {total:g} s reached after {s.attempt} attempt(s); "
                f"last error {s.cause}",
                last_error=exc,
                attempts=s.attempt,
                deadline=True,
                timeout=total,
                retry_after=s.retry_after,
                request=s.request,
            ) from exc
        raise retry_exhausted_error(
            f"Request failed after {s.attempt} attempt(s): {s.cause}; {why}",
            last_error=exc,
            attempts=s.attempt,
            retry_after=s.retry_after,
            request=s.request,
            hint="The upstream looks unhealthy; check it, or raise retry_attempts/total_timeout",
        ) from exc

    def deadline_passed(self, s: RequestState) -> NoReturn:
        """Raise the total deadline's error before an attempt that has no time left.

        After a failed attempt it is the give-up error of that attempt's
        failure with the deadline (a :class:`RetryExhaustedError` and a
        :class:`RequestTimeoutError`); before any, a :class:`RequestTimeoutError`.
        """
        attempts = s.attempt - 1
        total = s.total_timeout or 0.0
        message = f"Total deadline of {total:g} s passed after {attempts} attempt(s)"
        if attempts == 0:
            raise RequestTimeoutError(
                message, timeout=s.total_timeout, phase="total", attempts=0, request=s.request
            )
        err = retry_exhausted_error(
            f"{message}; last error {s.cause}" if s.cause else message,
            last_error=s.last_exc,
            attempts=attempts,
            deadline=True,
            timeout=total,
            retry_after=s.retry_after,
            request=s.request,
        )
        if s.last_exc is None:
            err.status_code = s.status_code  # the last attempt's failure was this status
        raise err from s.last_exc

    def unfinished(self, request: httpx.Request, start: float, exc: BaseException) -> None:
        """Emit ``RequestFinished`` for a request that ended on a path that did not report it."""
        if id(request) in self._reported:
            self._reported.discard(id(request))
            return
        outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failure"
        service = (request.extensions.get(EXTENSION_KEY) or {}).get("service")
        emit(
            self.observers,
            RequestFinished(
                request.headers.get("x-request-id"), request.method, redact_url(request.url),
                host_key(request.url), 0, self._clock.monotonic() - start, outcome, None,
                type(exc).__name__, str(service) if service is not None else None,
            ),
        )

    def finished(self, request: httpx.Request) -> None:
        """Forget a request that left normally (its ``RequestFinished`` went out)."""
        self._reported.discard(id(request))

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _why(s: RequestState, decision: RetryDecision) -> str:
        stop, delay = decision.stop, decision.delay
        if stop == "attempts":
            return f"all {s.attempt} attempts failed"
        if stop == "budget":
            return f"retry budget for {s.key} is spent"
        if stop == "deadline":
            return f"the next retry (in {delay:.2f} s) would pass the total deadline"
        return (
            f"the server asked to retry after {delay:g} s, more than max_delay "
            f"{s.policy.max_delay:g} s"
        )

    @staticmethod
    def _log_giveup(request: httpx.Request, attempts: int, text: str) -> None:
        _log.error(
            "Giving up on %s %s after %d attempt(s): %s",
            request.method, redact_url(request.url), attempts, text,
            extra={
                "method": request.method,
                "url": redact_url(request.url),
                "attempts": attempts,
                "host": host_key(request.url),
            },
        )

    @staticmethod
    def _extra(s: RequestState) -> dict[str, Any]:
        request = s.request
        return {
            "method": request.method,
            "url": redact_url(request.url),
            "host": s.key,
            "attempt": s.attempt,
            "max_attempts": cap_attempts(s.policy.max_attempts),
            "request_id": s.request_id,
        }


def _attempt(s: RequestState) -> tuple[str | None, str, str, str, int, int]:
    """The fields every attempt event starts with: id, method, URL (redacted), host, n of max."""
    request = s.request
    return (
        s.request_id, request.method, redact_url(request.url), s.key, s.attempt,
        cap_attempts(s.policy.max_attempts),  # what the testing switch allows, if on
    )
