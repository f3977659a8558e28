"""The retry decision: after a retryable failure, try again after *d* seconds, or stop because *r*.

A pure function of the policy, the request's progress and the time, the way
urllib3's ``Retry.increment`` is a value operation: it reads no clock,
sleeps nowhere and changes nothing, so every rule is unit-tested without an
event loop. The retry loop of :class:`~httpx_resilience.ResilientTransport`
calls it and acts on the answer (sleeps, or gives up with the reason).

The rules, in the order they are checked (the first that holds is the reason):

1. ``"attempts"``: this was the policy's last attempt.
2. ``"retry_after_too_long"``: the server asked (``Retry-After``) for a pause
   longer than the policy's ``max_delay``.
3. ``"deadline"``: sleeping the delay would reach the total deadline.
4. ``"budget"``: the retry budget has no whole retry left.

The delay is the server's ``Retry-After`` when it gave one the policy honours,
else the policy's backoff for this retry. The backoff is drawn even when the
answer is to stop, so a seeded random source gives the same delays whatever
the outcome (and the give-up message can name the delay it would have slept).

**The testing switch** (:func:`httpx_resilience.testing.set_testing`, or
``testing_mode()`` for one task) is the one ambient input: while it is on, the
last attempt is the switch's ``attempts`` when that is fewer than the policy's
(rule 1), and a retry is due after 0 s, whether the delay came from the
backoff or from ``Retry-After`` (so rule 3 only stops a request whose deadline
has already passed). What the rules decide is otherwise unchanged: a
``Retry-After`` beyond ``max_delay`` still ends the retries (the same error a
production run raises, at once), and the budget still counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from ..policies._testing_mode import active
from ..policies.retry import RetryPolicy

__all__ = ["RetryDecision", "StopReason", "decide_retry"]

StopReason = Literal["attempts", "retry_after_too_long", "deadline", "budget"]


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a retryable failure.

    Attributes:
        delay: seconds to sleep before the next attempt (when stopping: the
            delay that would have been slept, for the message).
        stop: why to stop, or ``None`` to retry after ``delay``.
    """

    delay: float
    stop: StopReason | None = None

    @property
    def retry(self) -> bool:
        """Whether to try again (after :attr:`delay`)."""
        return self.stop is None


def decide_retry(
    policy: RetryPolicy,
    attempt: int,
    *,
    server_delay: float | None,
    previous_delay: float | None,
    now: float,
    deadline: float | None,
    budget_left: float | None,
    rng: random.Random,
) -> RetryDecision:
    """Decide whether the request gets another attempt, and after how long.

    Args:
        policy: the retry policy in force for the request.
        attempt: the number of the attempt that just failed (1 for the first).
        server_delay: the delay the server asked for (``Retry-After``, in
            seconds), or ``None`` when it gave none (or it is not honoured).
        previous_delay: the delay slept before this attempt, or ``None``
            (decorrelated jitter grows from it).
        now: the monotonic clock's reading.
        deadline: the monotonic time the total deadline falls at, or ``None``.
        budget_left: retries left in the retry budget (may be fractional;
            fewer than one is none), or ``None`` without a budget.
        rng: the random source for the backoff's jitter.

    Returns:
        The decision: :attr:`RetryDecision.stop` is ``None`` to retry after
        :attr:`RetryDecision.delay`, else the first reason of the module
        docstring's list that holds. With the testing switch on, a retry's
        delay is 0 and the attempts are capped (see the module docstring).
    """
    testing = active()
    last = policy.max_attempts if testing is None else min(policy.max_attempts, testing.attempts)
    stop: StopReason | None = "attempts" if attempt >= last else None
    if server_delay is not None:
        delay = server_delay
        if stop is None and server_delay > policy.max_delay:
            stop = "retry_after_too_long"
    else:
        delay = policy.backoff(attempt - 1, previous=previous_delay, rng=rng)
    if testing is not None and stop is None:
        delay = 0.0  # no wait at all in testing mode, Retry-After's included
    if stop is None and deadline is not None and now + delay >= deadline:
        stop = "deadline"
    if stop is None and budget_left is not None and budget_left < 1:
        stop = "budget"
    return RetryDecision(delay, stop)
