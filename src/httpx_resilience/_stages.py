"""The protective stages of :class:`~httpx_resilience.ResilientTransport` around its retry loop.

The retry loop (``ResilientTransport._run``) decides *whether* to try again;
these stages guard *each try* and the request as a whole::

    bulkhead (_protected) → retry loop: [rate limiter wait (_wait_for_limiter)]
        → circuit breaker (_attempt) → attempt timeout (_send_once) → inner transport

* the bulkhead holds one slot for the whole logical request, so retries do
  not count as new concurrent requests, and a refusal is reported as an event;
* the limiter wait is bounded by what is left of the total deadline (the
  loop takes a permit at hand itself, without a coroutine);
* the breaker's permit records every attempt's outcome and duration, and is
  released unrecorded when the attempt is cancelled (a hedge that lost);
* the attempt timeout clamps httpx's per-phase timeouts to the attempt's
  budget and bounds their sum; a timeout that the total deadline imposed is
  reported as the total deadline's.

A mixin, as ``_Hedging`` and ``_Reporting`` are, so the loop calls these as it
always did: no extra call per request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from ._outcome import buffer_response, host_key
from ._timeout import timeout_scope
from .clock import Clock
from .exceptions import BulkheadFullError, RequestTimeoutError
from .observe.events import BulkheadRejected, Observer, emit

if TYPE_CHECKING:
    from .policies.breaker import BreakerPermit, CircuitBreaker
    from .policies.bulkhead import Bulkhead
    from .policies.limiter import RateLimiter

__all__ = ["total_deadline_error"]

# httpx's per-phase timeout keys, each clamped to the attempt's budget.
_PHASES = ("connect", "read", "write", "pool")


class _Stages:
    """Bulkhead, limiter wait, breaker and attempt timeout of ``ResilientTransport``."""

    _clock: Clock
    _inner: httpx.AsyncBaseTransport
    bulkhead: Bulkhead | None
    observers: tuple[Observer, ...]
    request_id_header: str | None

    if TYPE_CHECKING:

        async def _run(self, request: httpx.Request) -> httpx.Response: ...

        def _effective_total(self, request: httpx.Request) -> float: ...

    async def _protected(self, request: httpx.Request) -> httpx.Response:
        """The bulkhead stage: hold a slot for the whole logical request, retries included."""
        bulkhead = self.bulkhead
        if bulkhead is None:
            return await self._run(request)
        try:
            await bulkhead.acquire()
        except BulkheadFullError as exc:
            exc._request = request
            if self.observers:
                emit(
                    self.observers,
                    BulkheadRejected(
                        host_key(request.url), exc.max_concurrent, exc.max_queue,
                        request.headers.get(self.request_id_header or "x-request-id"),
                    ),
                )
            raise
        try:
            return await self._run(request)
        finally:
            bulkhead.release()

    async def _attempt(
        self,
        request: httpx.Request,
        timeout: float | None,
        phase: str,
        stream_mode: bool,
        breaker: CircuitBreaker | None,
    ) -> httpx.Response:
        """One attempt: breaker permit → inner transport → the breaker records the outcome."""
        if breaker is None:
            return await self._send_once(request, timeout, phase, stream_mode)
        permit: BreakerPermit = breaker.acquire()
        t0 = self._clock.monotonic()
        try:
            response = await self._send_once(request, timeout, phase, stream_mode)
        except asyncio.CancelledError:
            permit.release()
            raise
        except Exception as exc:
            duration = self._clock.monotonic() - t0
            if breaker.is_failure_exception(exc):
                permit.failure(duration)
            else:
                permit.success(duration)
            raise
        duration = self._clock.monotonic() - t0
        if breaker.is_failure_response(response):
            permit.failure(duration)
        else:
            permit.success(duration)
        return response

    async def _send_once(
        self, request: httpx.Request, timeout: float | None, phase: str, stream_mode: bool
    ) -> httpx.Response:
        """One attempt through the inner transport, bounded by ``timeout``."""
        if timeout is None:
            response = await self._inner.handle_async_request(request)
            if not stream_mode:
                response = await buffer_response(response)
            return response
        # httpx's own per-phase timeouts are clamped to the attempt's budget so a
        # slow connect still surfaces as ConnectTimeout (safe to retry); the scope
        # below is the backstop for the sum of the phases.
        phases = request.extensions.get("timeout")
        if phases is not None:
            clamped = {
                k: (timeout if (v := phases.get(k)) is None or v > timeout else v)
                for k in _PHASES
            }
            request.extensions = {**request.extensions, "timeout": clamped}
        try:
            async with timeout_scope(timeout * 1.01 + 0.002):
                response = await self._inner.handle_async_request(request)
                if not stream_mode:
                    response = await buffer_response(response)
        except TimeoutError as exc:
            if phase == "total":
                raise RequestTimeoutError(
                    f"Total deadline of {self._effective_total(request):g} s passed",
                    timeout=self._effective_total(request),
                    phase="total",
                    request=request,
                ) from exc
            raise RequestTimeoutError(
                f"Attempt timed out after {timeout:g} s",
                timeout=timeout,
                phase="attempt",
                request=request,
            ) from exc
        return response

    async def _wait_for_limiter(
        self,
        limiter: RateLimiter,
        remaining: float | None,
        request: httpx.Request,
        total_timeout: float | None,
    ) -> float:
        """Queue for a permit (``try_acquire`` found none), within the total deadline."""
        if remaining is None:
            return await limiter.acquire()
        try:
            async with timeout_scope(remaining):
                return await limiter.acquire()
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"Total deadline of {total_timeout:g} s passed while waiting for the rate limiter",
                timeout=total_timeout,
                phase="total",
                request=request,
            ) from exc


def total_deadline_error(
    exc: BaseException, total_timeout: float | None, attempt: int, request: httpx.Request
) -> RequestTimeoutError:
    """The total deadline's error for a timeout of an attempt it had cut short.

    When less than an attempt timeout is left, ``_send_once`` clamps httpx's
    per-phase timeouts to what is left; one of them firing (a ``ReadTimeout``,
    say) then means the deadline passed, and it must be reported as such,
    not retried as an ordinary attempt timeout. ``exc`` becomes the cause.
    """
    err = RequestTimeoutError(
        f"Total deadline of {total_timeout:g} s passed during attempt "
        f"{attempt} ({type(exc).__name__})",
        timeout=total_timeout,
        phase="total",
        request=request,
    )
    err.__cause__ = exc
    return err
