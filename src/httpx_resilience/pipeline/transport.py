"""``ResilientTransport``: the resilience pipeline as an ``httpx.AsyncBaseTransport``.

It wraps an inner transport (by default httpx's own ``httpx.AsyncHTTPTransport``,
or the one ``config.transport`` or a name asks for) and runs, for one logical
request, after checking its URL::

    total deadline → bulkhead → for each attempt:
        rate limiter → circuit breaker → [hedging] → attempt timeout → inner transport
        → classify → breaker records → retry? (budget, deadline, Retry-After) → sleep

so any ``httpx.AsyncClient(transport=ResilientTransport(...))`` gets the same
behaviour as :class:`~httpx_resilience.AsyncHTTPClient`.

Per-request overrides go in ``request.extensions["resilience"]`` (a mapping
with any of ``retry``, ``timeout``, ``total_timeout``, ``idempotent``,
``stream``, ``hedging``, ``service``, ``auth``, ``max_response_bytes``; a
malformed one is a ``ConfigurationError`` naming it); the outcome comes out as
``response.extensions["resilience"]``, a :class:`ResilienceInfo`.

Responses are read inside the attempt (so an error while reading the body is
retried and counted by the attempt timeout), up to ``max_response_bytes``
(``ClientConfig``'s, 100 MiB by default; past it ``ResponseTooLargeError``,
not retried). A request marked
``{"resilience": {"stream": True}}`` is not buffered: its body is the caller's
to read, and only the headers are covered by the retry loop.

This module holds the construction and the loop, which shows the order;
the work is done by collaborators the transport builds and owns:
:class:`~._attempt.AttemptRunner` (breaker, attempt timeout, inner send),
:class:`~._hedge.Hedger` (racing copies), :class:`~._report.Reporter`
(events, logs, the outcome and the give-up errors), the classification of
each outcome (``_classify``) and the pure :func:`~._decision.decide_retry`,
over one :class:`~._state.RequestState` per request.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ..auth.base import strip_foreign_credentials
from ..clock import SYSTEM_CLOCK, Clock
from ..config import ClientConfig, is_default
from ..exceptions import BulkheadFullError, ConfigurationError
from ..observe.events import Observer
from ..policies.budget import RetryBudget
from ..policies.hedging import HedgingPolicy
from ..policies.retry import RetryPolicy
from ..transports.factory import TransportKind, default_transport
from ._attempt import (
    AttemptRunner,
    pause_limiter,
    prepare_retry,
    wait_for_limiter,
    within_deadline,
)
from ._checks import check_ext, check_header_name, check_pipeline, check_seconds, override
from ._classify import classify_error, is_final
from ._decision import decide_retry
from ._hedge import Hedger
from ._outcome import EXTENSION_KEY, checked_host_key, host_key, is_shareable
from ._report import Reporter
from ._request_id import new_request_id, scan_headers
from ._state import RequestState

if TYPE_CHECKING:
    from ..policies.breaker import CircuitBreaker
    from ..policies.bulkhead import Bulkhead
    from ..policies.limiter import RateLimiter

__all__ = ["ResilientTransport"]

_EMPTY: Mapping[str, Any] = {}
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
        config: ClientConfig | None = None,
        observers: Sequence[Observer] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        cfg = config if config is not None else ClientConfig()
        self.config = cfg
        if transport is None or isinstance(transport, str):
            # Under an SDK the HTTP stack stays httpx's unless asked for: "auto"
            # (the config's default) is the client's choice, not this transport's.
            kind = transport or (cfg.transport if cfg.transport != "auto" else "httpx")
            transport = default_transport(cfg, kind=kind)
        elif not callable(getattr(transport, "handle_async_request", None)):
            raise ConfigurationError(
                f"transport must be an httpx.AsyncBaseTransport or one of 'httpx', "
                f"'native', 'aiohttp', 'auto', got {type(transport).__name__}",
                field="transport",
            )
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

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

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
            return await (self._run(s) if self.bulkhead is None else self._bulkhead(s))
        # Every request ends in exactly one RequestFinished, whatever path it leaves by.
        start = self._clock.monotonic()
        try:
            response = await self._bulkhead(self._start(request, key))
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
        """The retry loop: per attempt: limiter → breaker → hedge → timeout → send
        → classify → decide → sleep (the deadline started with ``s``)."""
        clock, reporter = self._clock, self._reporter
        budget = self.retry_budget
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
                else:
                    response = await self._attempts.run(s, timeout, phase)
            except Exception as exc:
                # Raises when the error ends the request (not retryable, or the deadline's).
                classify_error(s, exc, clock.monotonic() - t0, phase, reporter)
                failed: httpx.Response | None = None
            else:
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
        ext: Mapping[str, Any] = request.extensions.get(EXTENSION_KEY) or _EMPTY
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
        else:
            s = RequestState(
                request,
                ext,
                override(ext, "retry", self.retry),
                request_id,
                key,
                override(ext, "idempotent", False) or idempotent,
                self._clock.monotonic(),
                override(ext, "timeout", self.timeout),
                override(ext, "total_timeout", self.total_timeout),
                override(ext, "max_response_bytes", self.max_response_bytes),
            )
            override(ext, "stream", False)
            hedging = override(ext, "hedging", self.hedging)
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
            f"limiter={self.rate_limiter!r}, bulkhead={self.bulkhead!r})"
        )

