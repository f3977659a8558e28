"""``ResilientTransport``: the resilience pipeline as an ``httpx.AsyncBaseTransport``.

It wraps an inner transport (by default ``httpx.AsyncHTTPTransport``) and runs,
for one logical request::

    bulkhead → total deadline → for each attempt:
        rate limiter → circuit breaker → [hedging] → attempt timeout → inner transport
        → classify → breaker records → retry? (budget, deadline, Retry-After) → sleep

so any ``httpx.AsyncClient(transport=ResilientTransport(...))`` gets the same
behaviour as :class:`~httpx_resilience.AsyncHTTPClient`.

Per-request overrides go in ``request.extensions["resilience"]`` (a mapping
with any of ``retry``, ``timeout``, ``total_timeout``, ``idempotent``,
``stream``, ``hedging``, ``service``); the outcome comes out as
``response.extensions["resilience"]``, a :class:`ResilienceInfo`.

Responses are read inside the attempt (so an error while reading the body is
retried and counted by the attempt timeout). A request marked
``{"resilience": {"stream": True}}`` is not buffered: its body is the caller's
to read, and only the headers are covered by the retry loop.

This module holds the construction and the retry loop; the stages around an
attempt (``_stages``), hedging (``_hedge``), reporting (``_outcome``), the
request id (``_request_id``) and the construction checks
(``_pipeline_checks``) live beside it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ._hedge import _Hedging
from ._outcome import (
    EXTENSION_KEY,
    ResilienceInfo,
    _Reporting,
    describe,
    host_key,
    is_replayable,
)
from ._pipeline_checks import check_pipeline
from ._request_id import new_request_id, scan_headers
from ._stages import _Stages, total_deadline_error
from .auth.base import strip_foreign_credentials
from .clock import SYSTEM_CLOCK, Clock
from .config import ClientConfig, check_number
from .exceptions import (
    ConfigurationError,
    RequestNotReplayableError,
    RequestTimeoutError,
)
from .observe.events import (
    AttemptFailed,
    AttemptStarted,
    LimiterWaited,
    Observer,
    emit,
)
from .observe.redact import redact_url
from .policies.budget import RetryBudget
from .policies.hedging import HedgingPolicy, LatencyTracker
from .policies.retry import RetryPolicy
from .transports.factory import default_transport

if TYPE_CHECKING:
    from .policies.breaker import CircuitBreaker
    from .policies.bulkhead import Bulkhead
    from .policies.limiter import RateLimiter

__all__ = ["EXTENSION_KEY", "ResilienceInfo", "ResilientTransport", "host_key"]

_log = logging.getLogger("httpx_resilience.retry")

_EMPTY: Mapping[str, Any] = {}


class ResilientTransport(_Reporting, _Hedging, _Stages, httpx.AsyncBaseTransport):
    """An httpx transport that retries, paces and protects requests.

    Args:
        transport: the inner transport; when omitted, the one ``config.transport``
            names (``"auto"``: the aiohttp transport when the ``aiohttp`` extra is
            installed and HTTP/2 is off, else ``httpx.AsyncHTTPTransport``), with
            pool limits and TLS settings from ``config``.
        retry: the :class:`RetryPolicy` (``None`` → built from ``config``;
            ``RetryPolicy(max_attempts=1)`` disables retries).
        circuit_breaker: a :class:`~httpx_resilience.CircuitBreaker`.
        rate_limiter: a :class:`~httpx_resilience.RateLimiter`; every attempt
            (retries and hedges too) takes a permit.
        bulkhead: a :class:`~httpx_resilience.Bulkhead` capping concurrent requests.
        hedging: a :class:`~httpx_resilience.HedgingPolicy` for idempotent requests.
        timeout: seconds for one attempt (``None`` → ``config.timeout``).
        total_timeout: seconds for the whole logical request (``None`` →
            ``config.total_timeout``).
        retry_budget: the :class:`RetryBudget` (``None`` → one built from
            ``config``); pass ``False`` to disable the budget.
        config: a :class:`~httpx_resilience.ClientConfig` supplying defaults.
        observers: callables receiving :mod:`~httpx_resilience.observe.events` records.
        clock: the time source (a ``FakeClock`` in tests).
        rng: the random source for jitter.

    Raises:
        ConfigurationError: contradictory settings (for example an attempt
            timeout longer than the total timeout).
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        retry: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        rate_limiter: RateLimiter | None = None,
        bulkhead: Bulkhead | None = None,
        hedging: HedgingPolicy | None = None,
        timeout: float | None = None,
        total_timeout: float | None = None,
        retry_budget: RetryBudget | bool | None = None,
        config: ClientConfig | None = None,
        observers: Sequence[Observer] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        cfg = config if config is not None else ClientConfig()
        self.config = cfg
        if transport is None:
            transport = default_transport(cfg)
        if not cfg.verify_ssl:
            logging.getLogger("httpx_resilience.security").warning(
                "TLS certificate verification is disabled (verify_ssl=False): connections "
                "can be intercepted. Use it only against test servers.",
                extra={"verify_ssl": False},
            )
        self._inner = transport
        self.retry = retry if retry is not None else RetryPolicy.from_config(cfg)
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(
                f"retry must be a RetryPolicy, got {type(self.retry).__name__}", field="retry"
            )
        self.circuit_breaker = circuit_breaker
        self.rate_limiter = rate_limiter
        self.bulkhead = bulkhead
        self.hedging = hedging
        self.timeout = timeout if timeout is not None else cfg.timeout
        self.total_timeout = total_timeout if total_timeout is not None else cfg.total_timeout
        check_number("timeout", self.timeout, minimum=0, exclusive_min=True, optional=True)
        check_number(
            "total_timeout", self.total_timeout, minimum=0, exclusive_min=True, optional=True
        )
        self._clock = clock or SYSTEM_CLOCK
        if retry_budget is None or retry_budget is True:
            self.retry_budget: RetryBudget | None = RetryBudget(
                cfg.retry_budget_ratio,
                cfg.retry_budget_min_per_second,
                cfg.retry_budget_ttl,
                clock=self._clock,
            )
        elif retry_budget is False:
            self.retry_budget = None
        else:
            self.retry_budget = retry_budget
        self.request_id_header = cfg.request_id_header
        self.observers: tuple[Observer, ...] = tuple(observers)
        self._rng = rng or random.Random()
        self._trackers: dict[str, LatencyTracker] = {}
        self._reported: set[int] = set()
        # Contradictory set-ups fail here, not on the first request.
        check_pipeline(self.timeout, self.total_timeout, self.circuit_breaker, self.hedging)

    # -- httpx seam -------------------------------------------------------------------

    async def __aenter__(self) -> ResilientTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    async def aclose(self) -> None:
        """Close the inner transport (and its connection pool)."""
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pipeline; see the module docstring."""
        if not self.observers:
            return await self._protected(request)
        # Every request ends in exactly one RequestFinished, whatever path it leaves by.
        start = self._clock.monotonic()
        try:
            response = await self._protected(request)
        except BaseException as exc:
            self._report_unfinished(request, start, exc)
            raise
        self._reported.discard(id(request))
        return response

    # -- the retry loop ---------------------------------------------------------------

    async def _run(self, request: httpx.Request) -> httpx.Response:
        clock = self._clock
        start = clock.monotonic()
        ext: Mapping[str, Any] = request.extensions.get(EXTENSION_KEY) or _EMPTY
        policy: RetryPolicy = ext.get("retry") or self.retry
        attempt_timeout: float | None = ext.get("timeout", self.timeout)
        total_timeout: float | None = ext.get("total_timeout", self.total_timeout)
        stream_mode = bool(ext.get("stream", False))
        deadline = start + total_timeout if total_timeout is not None else None

        headers = request.headers
        rid_header = self.request_id_header
        request_id, has_idempotency_key = scan_headers(headers, rid_header)
        if rid_header is not None and request_id is None:
            request_id = new_request_id()
            headers[rid_header] = request_id
        method = request.method
        idempotent = bool(ext.get("idempotent", False)) or has_idempotency_key
        key = host_key(request.url)
        budget = self.retry_budget
        if budget is not None:
            budget.record_request(key)
        breaker = self.circuit_breaker.for_key(key) if self.circuit_breaker is not None else None
        limiter = self.rate_limiter.for_key(key) if self.rate_limiter is not None else None

        max_attempts = policy.max_attempts
        attempt = 0
        total_wait = 0.0
        previous_delay: float | None = None
        retry_after: float | None = None
        last_exc: BaseException | None = None
        hedges = 0
        hedge_policy = ext.get("hedging", self.hedging)
        if hedge_policy is not None and not (idempotent or hedge_policy.applies_to(method)):
            hedge_policy = None
        tracker = self._tracker(key) if hedge_policy is not None else None
        if "auth_origin" in ext:
            # A redirect may have moved the request to another origin: send no
            # credentials there (httpx itself keeps X-API-KEY and Proxy-Authorization).
            strip_foreign_credentials(request)
        service = ext.get("service")
        while True:
            attempt += 1
            if attempt > 1:
                if not is_replayable(request):
                    raise RequestNotReplayableError(
                        "A retry was due but the request body is a stream that was already "
                        "sent; it is not re-sent empty",
                        request=request,
                        hint="Send bytes/json/data (replayable) or disable retries for it",
                    ) from last_exc
                auth = ext.get("auth")
                if auth is not None and getattr(auth, "per_attempt", False):
                    await auth.prepare_request(request)
            now = clock.monotonic()
            remaining = deadline - now if deadline is not None else None
            if remaining is not None and remaining <= 0:
                raise self._deadline_error(request, total_timeout, attempt - 1, last_exc)
            # A permit at hand costs neither a coroutine nor another clock reading.
            if limiter is not None and not limiter.try_acquire():
                waited = await self._wait_for_limiter(limiter, remaining, request, total_timeout)
                total_wait += waited
                if waited > 0 and self.observers:
                    emit(self.observers, LimiterWaited(key, waited, request_id))
                if deadline is not None:
                    remaining = deadline - clock.monotonic()
            timeout = attempt_timeout
            phase = "attempt"
            if remaining is not None and (timeout is None or remaining < timeout):
                timeout, phase = remaining, "total"
            if self.observers:
                emit(
                    self.observers,
                    AttemptStarted(
                        request_id, method, redact_url(request.url), key, attempt,
                        max_attempts, request.headers, service,
                    ),
                )
            t0 = clock.monotonic()
            try:
                if hedge_policy is not None:
                    response, fired = await self._hedged(
                        request, timeout, phase, stream_mode, breaker, limiter, key,
                        hedge_policy, policy, request_id,
                    )
                    hedges += fired
                else:
                    response = await self._attempt(request, timeout, phase, stream_mode, breaker)
            except Exception as exc:
                duration = clock.monotonic() - t0
                # A clamped per-phase timeout firing means it is the deadline that passed.
                if (
                    phase == "total"
                    and isinstance(exc, httpx.TimeoutException)
                    and not (isinstance(exc, RequestTimeoutError) and exc.phase == "total")
                ):
                    exc = total_deadline_error(exc, total_timeout, attempt, request)
                if isinstance(exc, RequestTimeoutError) and exc.phase == "total":
                    exc.attempts = attempt
                    self._finished_with_error(request, request_id, attempt, start, exc)
                    raise exc
                retryable = policy.should_retry_exception(exc, method, idempotency_key=idempotent)
                last_exc = exc
                if self.observers:
                    emit(
                        self.observers,
                        AttemptFailed(
                            request_id, method, redact_url(request.url), key, attempt,
                            max_attempts, duration, None, type(exc).__name__, str(exc),
                        ),
                    )
                if not retryable:
                    self._finished_with_error(request, request_id, attempt, start, exc)
                    if attempt > 1:
                        self._log_giveup(request, attempt, f"{describe(exc)} (not retryable)")
                    raise
                cause = describe(exc)
                status_code: int | None = None
                server_delay: float | None = None
                failed_response: httpx.Response | None = None
            else:
                duration = clock.monotonic() - t0
                status_code = response.status_code
                if limiter is not None:
                    limiter.observe_response(response)  # RateLimit-* header pacing, if enabled
                server_delay = None
                if policy.retry_after_for(status_code):
                    server_delay = self._retry_after(response, request)
                    if server_delay is not None:
                        retry_after = server_delay
                        if limiter is not None and server_delay > 0:
                            limiter.pause(server_delay)
                if not policy.should_retry_status(status_code, method, idempotency_key=idempotent):
                    if attempt > 1:
                        _log.info(
                            "Succeeded after %d attempts: %s %s -> %d",
                            attempt, method, redact_url(request.url), status_code,
                            extra=self._extra(request, request_id, attempt, max_attempts),
                        )
                    if tracker is not None:
                        tracker.observe(duration)
                    return self._finish(
                        request, request_id, attempt, start, response,
                        total_wait=total_wait, retry_after=retry_after, breaker=breaker,
                        hedges=hedges,
                    )
                cause = f"HTTP {status_code} {response.reason_phrase}".rstrip()
                last_exc = None
                failed_response = response
                if self.observers:
                    emit(
                        self.observers,
                        AttemptFailed(
                            request_id, method, redact_url(request.url), key, attempt,
                            max_attempts, duration, status_code,
                        ),
                    )

            # A retryable failure: decide whether, and after how long, to try again.
            stop: str | None = None
            if attempt >= max_attempts:
                stop = "attempts"
            if server_delay is not None:
                delay = server_delay
                if stop is None and server_delay > policy.max_delay:
                    stop = "retry_after_too_long"
            else:
                delay = policy.backoff(attempt - 1, previous=previous_delay, rng=self._rng)
            if stop is None and deadline is not None and clock.monotonic() + delay >= deadline:
                stop = "deadline"
            if stop is None and budget is not None and not budget.try_spend(key):
                stop = "budget"
            if stop is not None:
                return self._give_up(
                    request, request_id, attempt, max_attempts, start, stop, cause,
                    failed_response, last_exc, total_wait, retry_after, delay, breaker,
                )
            self._retry_scheduled(
                request, request_id, key, attempt, max_attempts, delay, cause,
                server_delay, status_code, last_exc,
            )
            if failed_response is not None:
                await failed_response.aclose()
            previous_delay = delay
            await clock.sleep(delay)
            total_wait += delay

    def __repr__(self) -> str:
        return (
            f"ResilientTransport(retry={self.retry!r}, timeout={self.timeout}, "
            f"total_timeout={self.total_timeout}, breaker={self.circuit_breaker!r}, "
            f"limiter={self.rate_limiter!r}, bulkhead={self.bulkhead!r})"
        )

