"""What an attempt produced, and how the pipeline reports it.

Pure helpers of :class:`~httpx_resilience.ResilientTransport`: the outcome
record (:class:`ResilienceInfo`), body replay and buffering, and the
``_Reporting`` mixin that finishes a request: the outcome extension, the
give-up decision's error, log lines and events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from .exceptions import RequestTimeoutError, RetryExhaustedError
from .observe.events import Observer, RequestFinished, RetryScheduled, emit
from .observe.redact import redact_url
from .policies.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from .clock import Clock
    from .policies.breaker import CircuitBreaker

__all__ = [
    "EXTENSION_KEY",
    "ResilienceInfo",
    "buffer_response",
    "describe",
    "host_key",
    "is_replayable",
]

EXTENSION_KEY = "resilience"
_EMPTY: Mapping[str, Any] = {}

_log = logging.getLogger("httpx_resilience.retry")


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
    A response already in memory (``httpx.ByteStream``, or read by the inner
    transport, like ``httpx.MockTransport``'s) is returned as it is.
    """
    stream = response.stream
    if response.is_stream_consumed or isinstance(stream, httpx.ByteStream):
        return response
    assert isinstance(stream, httpx.AsyncByteStream)
    try:
        chunks = [chunk async for chunk in stream]
    finally:
        await stream.aclose()
    response.stream = httpx.ByteStream(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    return response

def describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _service(request: httpx.Request) -> str | None:
    service = (request.extensions.get(EXTENSION_KEY) or _EMPTY).get("service")
    return str(service) if service is not None else None


class _Reporting:
    """Finishing a logical request: outcome extension, give-up errors, logs and events."""

    _clock: Clock
    _reported: set[int]
    observers: tuple[Observer, ...]
    retry: RetryPolicy
    total_timeout: float | None

    def _effective_total(self, request: httpx.Request) -> float:
        ext = request.extensions.get(EXTENSION_KEY) or _EMPTY
        total = ext.get("total_timeout", self.total_timeout)
        return float(total) if total is not None else 0.0

    def _retry_after(self, response: httpx.Response, request: httpx.Request) -> float | None:
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

    def _deadline_error(
        self,
        request: httpx.Request,
        total_timeout: float | None,
        attempts: int,
        last_exc: BaseException | None,
    ) -> RequestTimeoutError:
        err = RequestTimeoutError(
            f"Total deadline of {total_timeout or 0:g} s passed after {attempts} attempt(s)",
            timeout=total_timeout,
            phase="total",
            attempts=attempts,
            request=request,
        )
        err.__cause__ = last_exc
        return err

    def _give_up(
        self,
        request: httpx.Request,
        request_id: str | None,
        attempt: int,
        max_attempts: int,
        start: float,
        stop: str,
        cause: str,
        response: httpx.Response | None,
        exc: BaseException | None,
        total_wait: float,
        retry_after: float | None,
        delay: float,
        breaker: CircuitBreaker | None,
    ) -> httpx.Response:
        why = {
            "attempts": f"all {attempt} attempts failed",
            "budget": f"retry budget for {host_key(request.url)} is spent",
            "deadline": f"the next retry (in {delay:.2f} s) would pass the total deadline",
            "retry_after_too_long": (
                f"the server asked to retry after {delay:g} s, more than max_delay "
                f"{self._policy(request).max_delay:g} s"
            ),
        }[stop]
        if attempt == 1 and stop == "attempts":
            # Retries are off: nothing was given up, the outcome is returned as it is.
            if response is not None:
                return self._finish(
                    request, request_id, attempt, start, response,
                    total_wait=total_wait, retry_after=retry_after, breaker=breaker,
                )
            assert exc is not None
            self._finished_with_error(request, request_id, attempt, start, exc)
            raise exc
        self._log_giveup(request, attempt, f"{cause}; giving up: {why}")
        if response is not None:
            return self._finish(
                request, request_id, attempt, start, response,
                total_wait=total_wait, retry_after=retry_after, breaker=breaker,
                exhausted=True, stop_reason=stop,
            )
        assert exc is not None
        self._finished_with_error(request, request_id, attempt, start, exc)
        if stop == "deadline":
            total = self._effective_total(request)
            raise RequestTimeoutError(
                f"Total deadline of {total:g} s reached after {attempt} attempt(s); "
                f"last error {cause}",
                timeout=total,
                phase="total",
                attempts=attempt,
                request=request,
            ) from exc
        raise RetryExhaustedError(
            f"Request failed after {attempt} attempt(s): {cause}; {why}",
            attempts=attempt,
            last_error=exc,
            retry_after=retry_after,
            request=request,
            hint="The upstream looks unhealthy; check it, or raise retry_attempts/total_timeout",
        ) from exc

    def _policy(self, request: httpx.Request) -> RetryPolicy:
        ext = request.extensions.get(EXTENSION_KEY) or _EMPTY
        policy: RetryPolicy = ext.get("retry") or self.retry
        return policy

    def _retry_scheduled(
        self,
        request: httpx.Request,
        request_id: str | None,
        key: str,
        attempt: int,
        max_attempts: int,
        delay: float,
        cause: str,
        server_delay: float | None,
        status_code: int | None,
        last_exc: BaseException | None,
    ) -> None:
        """Announce a retry about to sleep: the warning log line and ``RetryScheduled``.

        Only on the retry path (a sleep follows), so the call costs nothing
        that matters; the first attempt's success never comes here.
        """
        method = request.method
        _log.warning(
            "Attempt %d/%d failed: %s. Retrying in %.2f s [%s %s]",
            attempt, max_attempts, cause, delay, method, redact_url(request.url),
            extra={
                **self._extra(request, request_id, attempt, max_attempts),
                "delay": delay,
                "status_code": status_code,
                "error_type": type(last_exc).__name__ if last_exc is not None else None,
            },
        )
        if self.observers:
            emit(
                self.observers,
                RetryScheduled(
                    request_id, method, redact_url(request.url), key, attempt,
                    max_attempts, delay, cause, server_delay,
                ),
            )

    def _log_giveup(self, request: httpx.Request, attempts: int, text: str) -> None:
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

    def _extra(
        self, request: httpx.Request, request_id: str | None, attempt: int, max_attempts: int
    ) -> dict[str, Any]:
        return {
            "method": request.method,
            "url": redact_url(request.url),
            "host": host_key(request.url),
            "attempt": attempt,
            "max_attempts": max_attempts,
            "request_id": request_id,
        }

    def _report_unfinished(
        self, request: httpx.Request, start: float, exc: BaseException
    ) -> None:
        """Emit ``RequestFinished`` for a request that ended on a path that did not report it."""
        if id(request) in self._reported:
            self._reported.discard(id(request))
            return
        outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failure"
        emit(
            self.observers,
            RequestFinished(
                request.headers.get("x-request-id"), request.method, redact_url(request.url),
                host_key(request.url), 0, self._clock.monotonic() - start, outcome, None,
                type(exc).__name__, _service(request),
            ),
        )

    def _finished_with_error(
        self,
        request: httpx.Request,
        request_id: str | None,
        attempts: int,
        start: float,
        exc: BaseException,
    ) -> None:
        if self.observers:
            self._reported.add(id(request))
            emit(
                self.observers,
                RequestFinished(
                    request_id, request.method, redact_url(request.url), host_key(request.url),
                    attempts, self._clock.monotonic() - start, "failure", None,
                    type(exc).__name__, _service(request),
                ),
            )

    def _finish(
        self,
        request: httpx.Request,
        request_id: str | None,
        attempts: int,
        start: float,
        response: httpx.Response,
        *,
        total_wait: float = 0.0,
        retry_after: float | None = None,
        breaker: CircuitBreaker | None = None,
        exhausted: bool = False,
        stop_reason: str | None = None,
        hedges: int = 0,
    ) -> httpx.Response:
        elapsed = self._clock.monotonic() - start
        if self.observers:
            self._reported.add(id(request))
            ok = not exhausted and response.status_code < 500
            emit(
                self.observers,
                RequestFinished(
                    request_id, request.method, redact_url(request.url), host_key(request.url),
                    attempts, elapsed, "success" if ok else "failure", response.status_code,
                    None, _service(request),
                ),
            )
        response.extensions[EXTENSION_KEY] = ResilienceInfo(
            attempts=attempts,
            elapsed=elapsed,
            total_wait=total_wait,
            request_id=request_id,
            breaker_state=str(breaker.state.value) if breaker is not None else None,
            retry_after=retry_after,
            exhausted=exhausted,
            stop_reason=stop_reason,
            hedges=hedges,
            attempts_with_hedges=attempts + hedges,
        )
        return response
