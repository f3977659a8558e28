"""``ResilientTransport``: the resilience pipeline as an ``httpx.AsyncBaseTransport``.

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

from ..auth.base import strip_foreign_credentials
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
    pause_limiter,
    prepare_retry,
    wait_for_limiter,
    within_deadline,
)
from ._checks import check_ext, check_header_name, check_pipeline, check_seconds, override
from ._classify import classify_error, is_final
from ._construct import resolve_budget, resolve_inner, resolve_throttle
from ._decision import decide_retry
from ._fallback import throttled, with_fallback
from ._hedge import Hedger
from ._outcome import EXTENSION_KEY, checked_host_key, host_key, is_shareable
from ._report import Reporter
from ._request_id import new_request_id, scan_headers
from ._state import RequestState

if TYPE_CHECKING:
    from ..policies.breaker import CircuitBreaker
    from ..policies.bulkhead import Bulkhead
    from ..policies.limiter import RateLimiter
    from ._extensions import ResilienceOptions

__all__ = ["ResilientTransport"]

_EMPTY: ResilienceOptions = {}
# Keys of extensions["resilience"] that override no setting: with only these,
# a request takes the transport's settings as they are.
_INERT = frozenset({"service", "auth", "auth_origin"})


class ResilientTransport(httpx.AsyncBaseTransport):
    """An httpx transport that retries, paces and protects requests.

    Args:
        transport: the inner transport, or its name (``"httpx"``, ``"native"``,
            ``"aiohttp"``, ``"auto"``). When omitted: the one ``config.transport``
            names, and for its default ``"auto"`` httpx's own
            ``httpx.AsyncHTTPTransport``, so that under an SDK the HTTP stack
            stays httpx's unless asked otherwise (``AsyncHTTPClient`` resolves
            ``"auto"`` itself). Pool limits and TLS settings come from ``config``.
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
        transport: httpx.AsyncBaseTransport | TransportKind | None = None,
        *,
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
        self._inner = transport = resolve_inner(transport, cfg)
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
        self._attempts = AttemptRunner(transport, self._clock)
        self._hedger = Hedger(self._attempts, self._reporter, self.retry_budget)

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
            s = self._start(request, key)  # the total deadline starts now
            if s.fallback is None:
                return await (self._run(s) if self.bulkhead is None else self._bulkhead(s))
            return await with_fallback(s, self._bulkhead, reporter, self._clock.monotonic)
        # Every request ends in exactly one RequestFinished, whatever path it leaves by.
        start = self._clock.monotonic()
        try:
            s = self._start(request, key)
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
                s.total_wait += waited
                reporter.limiter_waited(s, waited)
                if s.deadline is not None:
                    remaining = s.deadline - clock.monotonic()
                    if remaining <= 0:  # nothing is sent after the deadline
                        reporter.deadline_passed(s)
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
            except Exception as exc:
                if throttle is not None:
                    throttle.record_error(s.key, exc)
                # Raises when the error ends the request (not retryable, or the deadline's).
                classify_error(s, exc, clock.monotonic() - t0, phase, reporter)
                failed: httpx.Response | None = None
            else:
                if throttle is not None:
                    throttle.record_status(s.key, response.status_code)
                if is_final(s, response, clock.monotonic() - t0, reporter):
                    if limiter is not None and s.server_delay is not None:
                        pause_limiter(s, limiter, None)
                    return reporter.finish(s, response)
                failed = response
            decision = decide_retry(
                s.policy, s.attempt, server_delay=s.server_delay,
                previous_delay=s.previous_delay, now=clock.monotonic(), deadline=s.deadline,
                budget_left=budget.available(s.key) if budget is not None else None,
                rng=self._rng,
            )
            if limiter is not None and s.server_delay is not None:
                pause_limiter(s, limiter, decision.stop)
            if decision.stop is not None:
                return reporter.give_up(s, decision, failed)
            if budget is not None:
                budget.try_spend(s.key)  # the retry the decision counted on
            reporter.retry_scheduled(s, decision.delay)
            if failed is not None:
                await failed.aclose()
            s.previous_delay = decision.delay
            await clock.sleep(decision.delay)
            s.total_wait += decision.delay

    # -- the steps of the loop --------------------------------------------------------

    def _start(self, request: httpx.Request, key: str) -> RequestState:
        """Open the request's state: overrides, request id, per-host policies; the deadline."""
        ext: ResilienceOptions = request.extensions.get(EXTENSION_KEY) or _EMPTY
        if type(ext) is not dict and ext is not _EMPTY:
            ext = check_ext(ext)
        headers = request.headers
        rid_header = self.request_id_header
        request_id, idempotent = scan_headers(headers, rid_header)
        if rid_header is not None and request_id is None:
            request_id = new_request_id()
            headers[rid_header] = request_id
        if ext is _EMPTY or _INERT.issuperset(ext):  # no overrides: the transport's settings
            s = RequestState(
                request, ext, self.retry, request_id, key, idempotent,
                self._clock.monotonic(), self.timeout, self.total_timeout,
                self.max_response_bytes,
            )
            hedging = self.hedging
            s.fallback = self.fallback
        else:
            s = RequestState(
                request, ext, override(ext, "retry", self.retry), request_id, key,
                override(ext, "idempotent", False) or idempotent, self._clock.monotonic(),
                override(ext, "timeout", self.timeout),
                override(ext, "total_timeout", self.total_timeout),
                override(ext, "max_response_bytes", self.max_response_bytes),
            )
            override(ext, "stream", False)
            hedging = override(ext, "hedging", self.hedging)
            s.fallback = override(ext, "fallback", self.fallback)
        if self.circuit_breaker is not None:
            s.breaker = self.circuit_breaker.for_key(key)
        if self.rate_limiter is not None:
            s.limiter = self.rate_limiter.for_key(key)
        if (
            hedging is not None
            and (s.idempotent or hedging.applies_to(request.method))
            and is_shareable(request)  # copies racing over one stream would each send part
        ):
            s.hedging = hedging
            s.tracker = self._hedger.tracker(key)
        if "auth_origin" in ext:
            # A redirect may have moved the request to another origin: send no
            # credentials there (httpx itself keeps X-API-KEY and Proxy-Authorization).
            strip_foreign_credentials(request)
        return s

    def __repr__(self) -> str:
        return (
            f"ResilientTransport(retry={self.retry!r}, timeout={self.timeout}, "
            f"total_timeout={self.total_timeout}, breaker={self.circuit_breaker!r}, "
            f"limiter={self.rate_limiter!r}, bulkhead={self.bulkhead!r}, "
            f"throttle={self.throttle!r}, fallback={self.fallback!r})"
        )

