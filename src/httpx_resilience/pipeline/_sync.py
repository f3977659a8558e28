"""The sync path of ``ResilientTransport``: ``handle_request``, for ``httpx.Client``.

The same pipeline as ``handle_async_request``, in the same order::

    URL check → [fallback] → total deadline → bulkhead → for each attempt:
        [adaptive throttle] → rate limiter → circuit breaker → attempt timeout
        → sync inner transport (body read inside) → classify → breaker and throttle record
        → retry? (budget, deadline, Retry-After) → sleep (the injected clock's ``sleep_sync``)

Only the skeleton of the loop and its waits are written here; every decision
is the async path's own code: the request's start (overrides, request id,
per-host policies: :func:`~._state.open_state`), :func:`~._classify.classify_error`
and :func:`~._classify.is_final`, :func:`~._attempt.after_failure` (the retry
decision, the limiter's pause, the give-up, the budget), the
:class:`~._report.Reporter` (events, logs, ``ResilienceInfo``, the errors that
keep their httpx classes), the throttle's refusal and the fallback's rules.

Waits block only the calling thread and end at the deadline: the bulkhead's
``acquire_sync``, the limiter's ``acquire_sync`` (FIFO with every thread and
task of the same limiter) and the backoff (``clock.sleep_sync``). Hedging
races attempts concurrently and needs the async path: asking for it here is
a :class:`ConfigurationError` at the first sync request.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Protocol

import httpx

from ..clock import sleep_sync
from ..exceptions import BulkheadFullError, ConfigurationError
from ..transports.factory import default_sync_transport
from ._attempt import after_failure, limiter_waited
from ._classify import classify_error, is_final
from ._construct import sync_inner_missing
from ._fallback import throttled, with_fallback_sync
from ._outcome import checked_host_key
from ._report import Reporter
from ._state import RequestState, Settings, open_state
from ._sync_attempt import SyncAttemptRunner, prepare_retry_sync, within_deadline_sync

if TYPE_CHECKING:
    from ..config import ClientConfig
    from ..policies.budget import RetryBudget
    from ..policies.bulkhead import Bulkhead

__all__ = ["SyncPipeline", "hedging_refused"]


class _Transport(Settings, Protocol):
    """What the sync path reads of its ``ResilientTransport`` (beyond :class:`Settings`)."""

    config: ClientConfig
    bulkhead: Bulkhead | None
    retry_budget: RetryBudget | None
    _inner: httpx.AsyncBaseTransport
    _checked: set[str]
    _reporter: Reporter
    _rng: random.Random


def hedging_refused() -> ConfigurationError:
    """The error of hedging asked for on the sync path."""
    return ConfigurationError(
        "hedging needs the async path (it races attempts concurrently): use "
        "httpx.AsyncClient for hedged requests, or drop hedging from the transport "
        "(or the request's extensions) used under httpx.Client",
        field="hedging",
    )


class SyncPipeline:
    """Runs requests of one :class:`ResilientTransport` from threads.

    Args:
        transport: the transport whose settings and collaborators it uses.
        inner: the sync inner transport given (``None``: built at the first request).
        buildable: whether a missing inner may be built (httpx's ``HTTPTransport``
            from the config); otherwise a sync request is a ``ConfigurationError``.
    """

    __slots__ = ("_buildable", "_inner", "_lock", "_runner", "_t")

    def __init__(
        self, transport: _Transport, inner: httpx.BaseTransport | None, buildable: bool
    ) -> None:
        self._t = transport
        self._inner = inner
        self._buildable = buildable
        self._lock = threading.Lock()
        self._runner: SyncAttemptRunner | None = None

    @property
    def inner(self) -> httpx.BaseTransport | None:
        """The sync inner transport, if given or built already."""
        return self._inner

    def _first(self) -> SyncAttemptRunner:
        """At the first sync request: refuse hedging, build the inner if need be (once)."""
        t = self._t
        if t.hedging is not None:
            raise hedging_refused()
        with self._lock:
            if self._runner is None:
                if self._inner is None:
                    if not self._buildable:
                        raise sync_inner_missing(t._inner)
                    self._inner = default_sync_transport(t.config)
                self._runner = SyncAttemptRunner(self._inner, t._clock)
            return self._runner

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pipeline; see the module docstring."""
        runner = self._runner or self._first()
        t = self._t
        key = checked_host_key(request.url, t._checked)  # the URL check, once per origin
        reporter = t._reporter
        observed = bool(reporter.observers)
        start = t._clock.monotonic() if observed else 0.0
        try:
            s = open_state(t, request, key)  # the total deadline starts now
            if s.hedging is not None or (s.ext and s.ext.get("hedging") is not None):
                raise hedging_refused()
            if s.fallback is not None:
                response = with_fallback_sync(
                    s, lambda s: self._bulkhead(s, runner), reporter, t._clock.monotonic
                )
            elif t.bulkhead is None:
                response = self._run(s, runner)
            else:
                response = self._bulkhead(s, runner)
        except BaseException as exc:
            if observed:  # exactly one RequestFinished, whatever the path
                reporter.unfinished(request, start, exc)
            raise
        if observed:
            reporter.finished(request)
        return response

    def _bulkhead(self, s: RequestState, runner: SyncAttemptRunner) -> httpx.Response:
        """The bulkhead: one slot for the whole logical request; its wait ends at the deadline."""
        t = self._t
        bulkhead = t.bulkhead
        if bulkhead is None:
            return self._run(s, runner)
        try:
            if s.deadline is None:
                bulkhead.acquire_sync()
            else:
                remaining = s.deadline - t._clock.monotonic()
                within_deadline_sync(bulkhead.acquire_sync, remaining, s, "a bulkhead slot")
        except BulkheadFullError as exc:
            exc._request = s.request
            t._reporter.bulkhead_rejected(s.request, exc, t.request_id_header)
            raise
        try:
            return self._run(s, runner)
        finally:
            bulkhead.release()

    def _run(self, s: RequestState, runner: SyncAttemptRunner) -> httpx.Response:
        """The retry loop: the async ``_run``'s order, with blocking waits."""
        t = self._t
        clock, reporter = t._clock, t._reporter
        budget, throttle, limiter = t.retry_budget, t.throttle, s.limiter
        if budget is not None:
            budget.record_request(s.key)
        while True:
            s.attempt += 1
            if s.attempt > 1:
                prepare_retry_sync(s, clock.monotonic)
            remaining = None if s.deadline is None else s.deadline - clock.monotonic()
            if remaining is not None and remaining <= 0:
                reporter.deadline_passed(s)
            if throttle is not None and (p := throttle.admit(s.key)):
                throttled(s, throttle, p, reporter)  # refused locally: nothing is sent
            if limiter is not None and not limiter.try_acquire():
                if remaining is None:
                    waited = limiter.acquire_sync(1)
                else:
                    waited = within_deadline_sync(
                        lambda left: limiter.acquire_sync(1, timeout=left),
                        remaining, s, "the rate limiter",
                    )
                remaining = limiter_waited(s, waited, clock, reporter)  # and the deadline again
            timeout, phase = s.attempt_timeout, "attempt"
            if remaining is not None and (timeout is None or remaining < timeout):
                timeout, phase = remaining, "total"
            if reporter.observers:
                reporter.attempt_started(s)
            s.server_delay = None
            t0 = clock.monotonic()
            failed: httpx.Response | None = None
            try:  # without a breaker, straight to the send
                response = (runner.send if s.breaker is None else runner.run)(s, timeout, phase)
            except Exception as exc:
                classify_error(s, exc, clock.monotonic() - t0, phase, reporter)
            else:
                if is_final(s, response, clock.monotonic() - t0, reporter):
                    return reporter.finish(s, response)
                failed = response
            delay = after_failure(s, failed, budget, t._rng, reporter, clock.monotonic())
            if isinstance(delay, httpx.Response):
                return delay
            if failed is not None:
                failed.close()
            sleep_sync(clock, delay)
            s.total_wait += delay

