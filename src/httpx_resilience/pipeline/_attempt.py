"""One attempt: breaker → attempt timeout → inner transport; the limiter's wait before it.

The retry loop of :class:`~httpx_resilience.ResilientTransport` decides
*whether* to try again; :class:`AttemptRunner` makes *one try*::

    breaker permit → attempt timeout → inner transport → [read the body] → the breaker records

* the breaker's permit records the attempt's outcome and duration, and is
  released unrecorded when the attempt is cancelled (a hedge that lost);
* the attempt timeout clamps httpx's per-phase timeouts to the attempt's
  budget and bounds their sum; a timeout that the total deadline imposed is
  reported as the total deadline's;
* the body is read inside the attempt (unless the request streams), so an
  error in the middle of it is a retryable read failure.

:func:`wait_for_limiter` queues for a rate-limiter permit within what is left
of the total deadline (the loop takes a permit at hand itself, without a
coroutine); :func:`within_deadline` bounds any such wait (the bulkhead's
too), and :func:`admit_hedge` does both for a hedged copy, so nothing waits or
is sent past the deadline. :func:`prepare_retry` checks that the body can be
sent again before a retry; :func:`pause_limiter` pauses the host's limiter for
a ``Retry-After``, within the retry policy's ``max_delay``. The runner holds
only the inner transport and the clock; what varies per request comes in the
:class:`RequestState`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..clock import Clock
from ..exceptions import RequestNotReplayableError, RequestTimeoutError
from ..policies._testing_mode import active
from ..policies.retry import classify_exception
from ._decision import decide_retry
from ._outcome import buffer_response, is_replayable, leave_unread
from ._state import RequestState
from ._timeout import timeout_scope

if TYPE_CHECKING:
    from ..policies.budget import RetryBudget
    from ..policies.limiter import RateLimiter
    from ._report import Reporter

__all__ = [
    "AttemptRunner",
    "admit_hedge",
    "after_failure",
    "attempt_timeout_error",
    "check_replayable",
    "clamp_phases",
    "deadline_error",
    "limiter_waited",
    "pause_limiter",
    "prepare_retry",
    "total_deadline_error",
    "wait_for_limiter",
    "within_deadline",
]

T = TypeVar("T")

# httpx's per-phase timeout keys, each clamped to the attempt's budget.
_PHASES = ("connect", "read", "write", "pool")


class AttemptRunner:
    """Sends one attempt of a request through the breaker and the attempt timeout.

    Args:
        inner: the transport that sends (``NativeTransport``, httpx's, ...).
        clock: the time source for the breaker's durations.
    """

    __slots__ = ("clock", "inner")

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    async def run(self, s: RequestState, timeout: float | None, phase: str) -> httpx.Response:
        """One attempt: breaker permit → :meth:`send` → the breaker records the outcome.

        Args:
            s: the request's state (request, breaker, stream mode, total timeout).
            timeout: seconds this attempt may take, or ``None``.
            phase: ``"total"`` when ``timeout`` is what is left of the total
                deadline (then its expiry is the deadline's), else ``"attempt"``.
        """
        breaker = s.breaker
        if breaker is None:
            return await self.send(s, timeout, phase)
        # The breaker's permit records the outcome and duration (a cancelled
        # attempt, such as a hedge that lost, records nothing).
        return await breaker.call(self.send, s, timeout, phase)

    async def send(self, s: RequestState, timeout: float | None, phase: str) -> httpx.Response:
        """One attempt through the inner transport, bounded by ``timeout``."""
        request = s.request
        inner = self.inner
        if timeout is None:
            response = await inner.handle_async_request(request)
            if not s.stream_mode and not leave_unread(response):
                response = await buffer_response(
                    response, s.max_response_bytes, request, s.hedging is not None
                )
            return response
        # httpx's own per-phase timeouts are clamped to the attempt's budget; the
        # scope below is the backstop for the sum of the phases.
        clamp_phases(request, timeout)
        try:
            with timeout_scope(timeout * 1.01 + 0.002) as scope:
                response = await inner.handle_async_request(request)
                # A body already in memory (httpx.MockTransport's, say) needs no reading.
                if not s.stream_mode and not leave_unread(response):
                    response = await buffer_response(
                        response, s.max_response_bytes, request, s.hedging is not None, scope
                    )
        except TimeoutError as exc:
            raise attempt_timeout_error(s, timeout, phase) from exc
        return response


def attempt_timeout_error(s: RequestState, timeout: float, phase: str) -> RequestTimeoutError:
    """The error of an attempt that outran ``timeout``: the total deadline's when
    ``phase == "total"`` (``timeout`` was what was left of it), else the attempt's."""
    if phase == "total":
        total = s.total_timeout or 0.0
        return RequestTimeoutError(
            f"Total deadline of {total:g} s passed", timeout=total, phase="total",
            request=s.request,
        )
    return RequestTimeoutError(
        f"Attempt timed out after {timeout:g} s", timeout=timeout, phase="attempt",
        request=s.request,
    )


def clamp_phases(request: httpx.Request, timeout: float) -> None:
    """Clamp httpx's per-phase timeouts (``extensions["timeout"]``) to ``timeout``.

    A slow connect still surfaces as ``ConnectTimeout`` (safe to retry). httpx's
    client puts a fresh per-phase dict on every request; when each phase already
    fits (the usual set-up), the request is left as it is.
    """
    phases = request.extensions.get("timeout")
    if phases is not None:
        try:
            fits = max(phases["connect"], phases["read"], phases["write"], phases["pool"])
            fits = fits <= timeout
        except (KeyError, TypeError):  # a phase missing or without a limit (None)
            fits = False
        if not fits:
            request.extensions = {**request.extensions, "timeout": _clamp(phases, timeout)}


def _clamp(phases: dict[str, Any], timeout: float) -> dict[str, Any]:
    """httpx's per-phase timeouts, each capped at ``timeout`` (a missing or unlimited one too)."""
    return {k: (timeout if (v := phases.get(k)) is None or v > timeout else v) for k in _PHASES}


async def wait_for_limiter(
    limiter: RateLimiter, remaining: float | None, s: RequestState
) -> float:
    """Queue for a permit (``try_acquire`` found none), within the total deadline.

    Returns the seconds waited; raises the total deadline's
    :class:`RequestTimeoutError` when the deadline passes first.
    """
    if remaining is None:
        return await limiter.acquire()
    return await within_deadline(limiter.acquire, remaining, s, "the rate limiter")


async def within_deadline(
    wait: Callable[[], Awaitable[T]], remaining: float, s: RequestState, what: str
) -> T:
    """``await wait()``, cut short when the ``remaining`` seconds of the deadline run out.

    Every wait before an attempt (a bulkhead slot, a limiter permit) goes
    through here, so none outlasts the request's total deadline.

    Raises:
        RequestTimeoutError: the deadline passed first (``phase="total"``);
            ``wait`` was cancelled, so it took nothing.
    """
    if remaining <= 0:
        raise deadline_error(s, f"before {what} was reached")
    try:
        with timeout_scope(remaining):
            return await wait()
    except TimeoutError as exc:
        raise deadline_error(s, f"while waiting for {what}") from exc


async def admit_hedge(s: RequestState, clock: Clock) -> tuple[float | None, str]:
    """A hedged copy's entry: a limiter permit within the deadline, then its timeout.

    Returns the copy's timeout and phase, as the retry loop computes them for
    an attempt: the attempt timeout, or what is left of the deadline when that
    is shorter (``"total"``).

    Raises:
        RequestTimeoutError: the deadline passed while waiting, or before the
            copy could be sent (nothing is sent after the deadline).
    """
    deadline, limiter = s.deadline, s.limiter
    if limiter is not None and not limiter.try_acquire():
        remaining = None if deadline is None else deadline - clock.monotonic()
        s.total_wait += await wait_for_limiter(limiter, remaining, s)
    timeout = s.attempt_timeout
    if deadline is None:
        return timeout, "attempt"
    remaining = deadline - clock.monotonic()
    if remaining <= 0:
        raise deadline_error(s, "before a hedged attempt could start")
    if timeout is None or remaining < timeout:
        return remaining, "total"
    return timeout, "attempt"


def deadline_error(s: RequestState, when: str) -> RequestTimeoutError:
    """The total deadline's error, for a wait it cut short (nothing was sent for it)."""
    total = s.total_timeout or 0.0
    return RequestTimeoutError(
        f"Total deadline of {total:g} s passed {when}",
        timeout=total,
        phase="total",
        request=s.request,
    )


def total_deadline_error(
    exc: BaseException, total_timeout: float | None, attempt: int, request: httpx.Request
) -> RequestTimeoutError:
    """The total deadline's error for a timeout of an attempt it had cut short.

    When less than an attempt timeout is left, :meth:`AttemptRunner.send`
    clamps httpx's per-phase timeouts to what is left; one of them firing (a
    ``ReadTimeout``, say) then means the deadline passed, and it must be
    reported as such, not retried as an ordinary attempt timeout. ``exc``
    becomes the cause.
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


def pause_limiter(s: RequestState, limiter: RateLimiter, stop: str | None) -> None:
    """Pause the host's limiter for the ``Retry-After`` the last response gave.

    Never longer than the retry policy's ``max_delay``, and not at all when the
    retry loop gives up because the server asked for longer than that
    (``stop == "retry_after_too_long"``): one response must not stall every
    request to the host (with a global limiter, to every host) on its word;
    and not at all in testing mode (the pause would outlive the test and stall
    requests of other tests that are not in testing mode).
    """
    delay = s.server_delay
    if (
        delay is not None
        and delay > 0
        and stop != "retry_after_too_long"
        and active() is None
    ):
        limiter.pause(min(delay, s.policy.max_delay))


async def prepare_retry(s: RequestState, clock: Clock) -> None:
    """Before a retry: the body must be replayable; per-attempt auth signs again.

    A body that cannot be read twice is still whole after a failure before
    the request left (a connect error, the pool's timeout): it is sent then.
    Signing is a wait like any other: it ends at the total deadline.

    Raises:
        RequestNotReplayableError: the body cannot be sent again as it was.
        RequestTimeoutError: the deadline passed while signing.
    """
    check_replayable(s)
    auth = s.ext.get("auth")
    if auth is not None and getattr(auth, "per_attempt", False):
        request = s.request
        if s.deadline is None:
            await auth.prepare_request(request)
        else:
            remaining = s.deadline - clock.monotonic()
            await within_deadline(
                lambda: auth.prepare_request(request), remaining, s, "the credentials"
            )


def check_replayable(s: RequestState) -> None:
    """Before a retry: raise :class:`RequestNotReplayableError` when the body cannot be
    sent again as it was (not after a failure before the request left: it is whole)."""
    request = s.request
    exc = s.last_exc
    if not ((exc is not None and classify_exception(exc) == "connect") or is_replayable(request)):
        raise RequestNotReplayableError(
            "A retry was due but the request body cannot be sent again as it was "
            "(a stream already read, or a file that cannot seek back); it is not "
            "re-sent empty or in part",
            request=request,
            hint="Send bytes/json/data or seekable files (replayable), or disable "
            "retries for it",
        ) from exc


def after_failure(
    s: RequestState,
    failed: httpx.Response | None,
    budget: RetryBudget | None,
    rng: random.Random,
    reporter: Reporter,
    now: float,
) -> httpx.Response | float:
    """After a retryable failure: the seconds to sleep before the next attempt, or the end.

    Both retry loops (async and sync) call it: :func:`~._decision.decide_retry`,
    the limiter paused for a ``Retry-After`` (:func:`pause_limiter`), the
    give-up (the last response returned marked ``exhausted``, or the typed
    error raised), else the budget's retry spent and the retry announced.
    """
    limiter = s.limiter
    decision = decide_retry(
        s.policy, s.attempt, server_delay=s.server_delay,
        previous_delay=s.previous_delay, now=now, deadline=s.deadline,
        budget_left=budget.available(s.key) if budget is not None else None,
        rng=rng,
    )
    if limiter is not None and s.server_delay is not None:
        pause_limiter(s, limiter, decision.stop)
    if decision.stop is not None:
        return reporter.give_up(s, decision, failed)
    if budget is not None:
        budget.try_spend(s.key)  # the retry the decision counted on
    reporter.retry_scheduled(s, decision.delay)
    s.previous_delay = decision.delay
    return decision.delay


def limiter_waited(
    s: RequestState, waited: float, clock: Clock, reporter: Reporter
) -> float | None:
    """After a wait for a limiter permit: count and report it; what is left of the deadline.

    Raises:
        RequestTimeoutError: the deadline passed meanwhile (nothing is sent after it).
    """
    s.total_wait += waited
    reporter.limiter_waited(s, waited)
    if s.deadline is None:
        return None
    remaining = s.deadline - clock.monotonic()
    if remaining <= 0:
        reporter.deadline_passed(s)
    return remaining
