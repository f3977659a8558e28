"""``ResilientTransport``: the resilience pipeline as an ``httpx.AsyncBaseTransport``
and an ``httpx.BaseTransport`` (``handle_request``, the sync path: :mod:`._sync`).

It wraps an inner transport (by default httpx's own ``httpx.AsyncHTTPTransport``,
or the one ``config.transport`` or a name asks for) and runs, for one logical
request, after checking its URL::

    [fallback] → total deadline → bulkhead → for each attempt:
        [adaptive throttle] → rate limiter → circuit breaker → [hedging] → attempt timeout
        → inner transport → classify → breaker and throttle record
        → retry? (budget, deadline, Retry-After) → sleep

so any ``httpx.AsyncClient(transport=ResilientTransport(...))`` gets the same
behaviour as :class:`~httpx_resilience.AsyncHTTPClient`.

Per-request overrides go in ``request.extensions["resilience"]`` (a mapping
with any of ``retry``, ``timeout``, ``total_timeout``, ``idempotent``,
``stream``, ``hedging``, ``fallback``, ``service``, ``auth``,
``max_response_bytes``; a malformed one is a ``ConfigurationError`` naming
it); the outcome comes out as ``response.extensions["resilience"]``, a
:class:`ResilienceInfo`.

Responses are read inside the attempt (an error in the body is retried, the
attempt timeout covers it) up to ``max_response_bytes`` (past it
``ResponseTooLargeError``, not retried), unless the request is marked
``{"resilience": {"stream": True}}``: then only the headers are retried.

This module holds the construction and the loop, which shows the order; the
work is done by collaborators: :class:`~._attempt.AttemptRunner` (breaker,
attempt timeout, send), :class:`~._hedge.Hedger`, :class:`~._report.Reporter`
(events, logs, outcome, give-up errors), ``_classify``, the pure
:func:`~._decision.decide_retry`, ``_fallback`` (the fallback, the throttle's
refusal), over one :class:`~._state.RequestState`; ``_construct`` builds the parts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..config import ClientConfig, is_default
from ..exceptions import BulkheadFullError, ConfigurationError
from ..observe.events import Observer
from ..observe.logfilter import ensure_httpx_log_redaction
from ..policies.budget import RetryBudget
from ..policies.fallback import FallbackSource, as_fallback
from ..policies.hedging import HedgingPolicy
from ..policies.retry import RetryPolicy
from ..policies.throttle import AdaptiveThrottle
from ..transports.factory import TransportKind
from ._attempt import (
    AttemptRunner,
    after_failure,
    limiter_waited,
    prepare_retry,
    wait_for_limiter,
    within_deadline,
)
from ._checks import check_header_name, check_pipeline, check_seconds
from ._classify import classify_error, is_final
from ._construct import resolve_budget, resolve_inner, resolve_sync_inner, resolve_throttle
from ._fallback import throttled, with_fallback
from ._hedge import Hedger
from ._outcome import checked_host_key, host_key
from ._report import Reporter
from ._state import RequestState, open_state
from ._sync import SyncPipeline

if TYPE_CHECKING:
    from ..policies.breaker import CircuitBreaker
    from ..policies.bulkhead import Bulkhead
    from ..policies.limiter import RateLimiter

__all__ = ["ResilientTransport"]


class ResilientTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """An httpx transport that retries, paces and protects requests.

    Args:
        transport: the inner transport, or its name (``"httpx"``, ``"native"``,
            ``"aiohttp"``, ``"auto"``). When omitted: the one ``config.transport``
            names, and for its default ``"auto"`` httpx's own
            ``httpx.AsyncHTTPTransport``, so that under an SDK the HTTP stack
            stays httpx's unless asked otherwise (``AsyncHTTPClient`` resolves
            ``"auto"`` itself). Pool limits and TLS settings come from ``config``.
            A sync ``httpx.BaseTransport`` here serves ``httpx.Client`` only.
        sync_transport: the inner transport of the sync path (``httpx.Client``);
            when omitted, httpx's ``httpx.HTTPTransport`` is built from ``config``
            at the first sync request (unless ``transport`` is an async object).
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
        fallback: a :class:`~httpx_resilience.Fallback` (or a bare
            ``httpx.Response`` or callable ``(request, error) -> response``)
            answering requests that finally fail.
        throttle: an :class:`~httpx_resilience.AdaptiveThrottle`: every
            attempt (retries too) may be refused locally while the host rejects.
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
        transport: httpx.AsyncBaseTransport | httpx.BaseTransport | TransportKind | None = None,
        *,
        sync_transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        rate_limiter: RateLimiter | None = None,
        bulkhead: Bulkhead | None = None,
        hedging: HedgingPolicy | None = None,
        timeout: float | None = None,
        total_timeout: float | None = None,
        retry_budget: RetryBudget | bool | None = None,
        fallback: FallbackSource | None = None,
        throttle: AdaptiveThrottle | None = None,
        config: ClientConfig | None = None,
        observers: Sequence[Observer] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        ensure_httpx_log_redaction()  # httpx's own log lines: secrets hidden (once; switchable)
        cfg = config if config is not None else ClientConfig()
        self.config = cfg
        sync = resolve_sync_inner(transport, sync_transport)
        buildable = transport is None or isinstance(transport, str)
        self._inner = inner = resolve_inner(transport, cfg)
        self.retry = retry if retry is not None else RetryPolicy.from_config(cfg)
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(
                f"retry must be a RetryPolicy, got {type(self.retry).__name__}", field="retry"
            )
        self.circuit_breaker = circuit_breaker
        self.rate_limiter = rate_limiter
        self.bulkhead = bulkhead
        self.hedging = hedging
        self.fallback = as_fallback(fallback)
        self.throttle = resolve_throttle(throttle)
        self.total_timeout = check_seconds(
            "total_timeout", total_timeout if total_timeout is not None else cfg.total_timeout
        )
        if timeout is None:
            timeout = cfg.timeout
            # the config's default attempt timeout yields to a shorter deadline given here
            if is_default(timeout) and self.total_timeout is not None:
                timeout = min(timeout, self.total_timeout)
        self.timeout = check_seconds("timeout", timeout)
        self._clock = clock or SYSTEM_CLOCK
        self.retry_budget = resolve_budget(retry_budget, cfg, self._clock)
        check_header_name("request_id_header", cfg.request_id_header)
        self.request_id_header = cfg.request_id_header
        self.max_response_bytes = cfg.max_response_bytes
        self._checked: set[str] = set()  # host keys whose URL check passed
        self._rng = rng or random.Random()
        # Contradictory set-ups fail here, not on the first request.
        check_pipeline(self.timeout, self.total_timeout, self.circuit_breaker, self.hedging)
        # The collaborators: each gets what it needs here, and nothing else of ours.
        self._reporter = Reporter(self._clock, tuple(observers))
        self._attempts = AttemptRunner(inner, self._clock)
        self._hedger = Hedger(self._attempts, self._reporter, self.retry_budget)
        self._sync = SyncPipeline(self, sync, buildable)

    @property
    def observers(self) -> tuple[Observer, ...]:
        """The event hooks; assign a new sequence to replace them."""
        return self._reporter.observers

    @observers.setter
    def observers(self, value: Iterable[Observer]) -> None:
        self._reporter.observers = tuple(value)

    # -- httpx seam -------------------------------------------------------------------

    async def __aenter__(self) -> ResilientTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None, traceback: TracebackType | None = None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc_value, traceback)

    async def aclose(self) -> None:
        """Close the inner transport (and its connection pool)."""
        await self._inner.aclose()

    def __enter__(self) -> ResilientTransport:
        if (inner := self._sync.inner) is not None:
            inner.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None, traceback: TracebackType | None = None,
    ) -> None:
        if (inner := self._sync.inner) is not None:
            inner.__exit__(exc_type, exc_value, traceback)

    def close(self) -> None:
        """Close the sync inner transport (and its pool), if it was given or built."""
        if (inner := self._sync.inner) is not None:
            inner.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pipeline from a thread (``httpx.Client``): :mod:`._sync`.

        Raises:
            ConfigurationError: hedging asked for (it needs the async path), no
                usable sync inner transport, or a malformed override.
        """
        return self._sync.handle(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pipeline; see the module docstring.

        Raises:
            InvalidURLError: a URL no connection can be made to (no host, port 0
                or over 65535, a malformed host name), before any policy runs.
            ConfigurationError: a malformed override in ``extensions["resilience"]``.
        """
        url = request.url
        try:
            key = host_key(url)
        except UnicodeError:  # an xn-- label that is not punycode: the check says why
            key = checked_host_key(url, self._checked)
        if key not in self._checked:  # the URL check, once per origin
            checked_host_key(url, self._checked)
        reporter = self._reporter
        if not reporter.observers:
            s = open_state(self, request, key)  # the total deadline starts now
            if s.fallback is None:
                return await (self._run(s) if self.bulkhead is None else self._bulkhead(s))
            return await with_fallback(s, self._bulkhead, reporter, self._clock.monotonic)
        # Every request ends in exactly one RequestFinished, whatever path it leaves by.
        start = self._clock.monotonic()
        try:
            s = open_state(self, request, key)
            response = await (
                self._bulkhead(s) if s.fallback is None
                else with_fallback(s, self._bulkhead, reporter, self._clock.monotonic)
            )
        except BaseException as exc:
            reporter.unfinished(request, start, exc)
            raise
        reporter.finished(request)
        return response

    # -- the pipeline -----------------------------------------------------------------

    async def _bulkhead(self, s: RequestState) -> httpx.Response:
        """The bulkhead: one slot for the whole logical request, retries included.

        The wait for a slot counts against the total deadline, like every wait.
        """
        bulkhead = self.bulkhead
        if bulkhead is None:
            return await self._run(s)
        try:
            if s.deadline is None:
                await bulkhead.acquire()
            else:
                remaining = s.deadline - self._clock.monotonic()
                await within_deadline(bulkhead.acquire, remaining, s, "a bulkhead slot")
        except BulkheadFullError as exc:
            exc._request = s.request
            self._reporter.bulkhead_rejected(s.request, exc, self.request_id_header)
            raise
        try:
            return await self._run(s)
        finally:
            bulkhead.release()

    async def _run(self, s: RequestState) -> httpx.Response:
        """The retry loop: per attempt: throttle → limiter → breaker → hedge → timeout
        → send → classify → decide → sleep (the deadline started with ``s``)."""
        clock, reporter = self._clock, self._reporter
        budget, throttle = self.retry_budget, self.throttle
        if budget is not None:
            budget.record_request(s.key)
        while True:
            s.attempt += 1
            if s.attempt > 1:
                await prepare_retry(s, clock)
            # What is left of the deadline bounds the limiter's wait and the attempt.
            remaining = None
            if s.deadline is not None:
                remaining = s.deadline - clock.monotonic()
                if remaining <= 0:
                    reporter.deadline_passed(s)
            if throttle is not None and (p := throttle.admit(s.key)):
                throttled(s, throttle, p, reporter)  # refused locally: nothing is sent
            limiter = s.limiter
            # A permit at hand costs neither a coroutine nor another clock reading.
            if limiter is not None and not limiter.try_acquire():
                waited = await wait_for_limiter(limiter, remaining, s)
                remaining = limiter_waited(s, waited, clock, reporter)  # and the deadline again
            timeout, phase = s.attempt_timeout, "attempt"
            if remaining is not None and (timeout is None or remaining < timeout):
                timeout, phase = remaining, "total"
            if reporter.observers:
                reporter.attempt_started(s)
            s.server_delay = None  # what this attempt's response asks for, if anything
            t0 = clock.monotonic()
            try:
                if s.hedging is not None:  # breaker → [hedge] → attempt timeout → send
                    response = await self._hedger.race(s, s.hedging, timeout, phase)
                else:  # without a breaker, straight to the send (one coroutine less)
                    runner = self._attempts
                    send = runner.send if s.breaker is None else runner.run
                    response = await send(s, timeout, phase)
            except Exception as exc:  # the throttle records it; raises when it ends the request
                classify_error(s, exc, clock.monotonic() - t0, phase, reporter)
                failed: httpx.Response | None = None
            else:  # the throttle records it; a final Retry-After pauses the limiter
                if is_final(s, response, clock.monotonic() - t0, reporter):
                    return reporter.finish(s, response)
                failed = response
            # decide; then give up (return or raise), or spend the budget and announce
            delay = after_failure(s, failed, budget, self._rng, reporter, clock.monotonic())
            if isinstance(delay, httpx.Response):
                return delay
            if failed is not None:
                await failed.aclose()
            await clock.sleep(delay)
            s.total_wait += delay

    def __repr__(self) -> str:
        return (
            f"ResilientTransport(retry={self.retry!r}, timeout={self.timeout}, "
            f"total_timeout={self.total_timeout}, breaker={self.circuit_breaker!r}, "
            f"limiter={self.rate_limiter!r}, bulkhead={self.bulkhead!r}, "
            f"throttle={self.throttle!r}, fallback={self.fallback!r})"
        )

