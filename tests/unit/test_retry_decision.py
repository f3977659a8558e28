"""The retry decision as a value operation: no clock, no event loop, no transport."""

from __future__ import annotations

import random

import pytest

from httpx_resilience import RetryPolicy
from httpx_resilience.pipeline._decision import RetryDecision, decide_retry

POLICY = RetryPolicy(max_attempts=4, backoff_factor=0.5, multiplier=2.0, jitter="none", max_delay=10)


def decide(
    attempt: int = 1,
    *,
    policy: RetryPolicy = POLICY,
    server_delay: float | None = None,
    previous_delay: float | None = None,
    now: float = 100.0,
    deadline: float | None = None,
    budget_left: float | None = None,
    seed: int = 0,
) -> RetryDecision:
    return decide_retry(
        policy, attempt, server_delay=server_delay, previous_delay=previous_delay, now=now,
        deadline=deadline, budget_left=budget_left, rng=random.Random(seed),
    )


def test_retries_with_the_exponential_backoff_of_each_retry() -> None:
    """Attempts 1..3 of 4 retry after 0.5, 1 and 2 s (no jitter)."""
    assert [decide(a) for a in (1, 2, 3)] == [
        RetryDecision(0.5), RetryDecision(1.0), RetryDecision(2.0)
    ]
    assert decide(1).retry


def test_the_last_attempt_stops_with_attempts() -> None:
    """After the policy's last attempt the answer is stop, reason "attempts"."""
    d = decide(4)
    assert d.stop == "attempts" and not d.retry
    assert d.delay == 4.0  # the delay it would have slept, for the message


def test_retry_after_replaces_the_backoff() -> None:
    """A server delay is used as it is, instead of the computed backoff."""
    assert decide(1, server_delay=3.0) == RetryDecision(3.0)
    assert decide(1, server_delay=0.0) == RetryDecision(0.0)


def test_retry_after_longer_than_max_delay_stops() -> None:
    """A Retry-After above max_delay stops with "retry_after_too_long"."""
    assert decide(1, server_delay=10.5).stop == "retry_after_too_long"
    assert decide(1, server_delay=10.0).retry  # the limit itself is allowed


def test_attempts_wins_over_the_other_reasons() -> None:
    """The first reason that holds is the one given: attempts before everything else."""
    d = decide(4, server_delay=99.0, deadline=100.5, budget_left=0.0)
    assert d.stop == "attempts"
    assert decide(1, server_delay=99.0, deadline=100.5, budget_left=0.0).stop == (
        "retry_after_too_long"
    )
    assert decide(1, deadline=100.5, budget_left=0.0).stop == "deadline"


def test_a_sleep_that_reaches_the_deadline_stops() -> None:
    """now + delay at or past the deadline stops with "deadline"; just before it retries."""
    assert decide(1, now=100.0, deadline=100.5).stop == "deadline"  # lands exactly on it
    assert decide(1, now=100.0, deadline=100.51).retry
    assert decide(1, server_delay=2.0, now=100.0, deadline=101.0).stop == "deadline"


def test_the_budget_needs_one_whole_retry() -> None:
    """Fewer than one retry left in the budget stops with "budget"; None means no budget."""
    assert decide(1, budget_left=0.99).stop == "budget"
    assert decide(1, budget_left=1.0).retry
    assert decide(1, budget_left=None).retry


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jitter_draws_from_the_given_random_source(jitter: str) -> None:
    """The same seed gives the same delay; the delay respects the policy's bounds."""
    policy = RetryPolicy(max_attempts=5, backoff_factor=0.5, jitter=jitter, max_delay=3)
    first = decide(2, policy=policy, previous_delay=0.7, seed=42)
    again = decide(2, policy=policy, previous_delay=0.7, seed=42)
    assert first == again
    assert 0.0 <= first.delay <= 3.0


def test_the_backoff_is_drawn_even_when_stopping() -> None:
    """Stopping consumes the same random numbers as retrying, so seeded runs stay in step."""
    policy = RetryPolicy(max_attempts=2, backoff_factor=1.0, jitter="full", max_delay=30)
    rng_stop, rng_retry = random.Random(7), random.Random(7)
    stop = decide_retry(policy, 2, server_delay=None, previous_delay=None, now=0.0,
                        deadline=None, budget_left=None, rng=rng_stop)
    decide_retry(policy, 1, server_delay=None, previous_delay=None, now=0.0,
                 deadline=None, budget_left=None, rng=rng_retry)
    assert stop.stop == "attempts"
    assert rng_stop.random() == rng_retry.random()


def test_the_decision_is_an_immutable_value() -> None:
    """A RetryDecision cannot be changed after it is made."""
    d = decide(1)
    with pytest.raises(AttributeError):
        d.delay = 5.0  # type: ignore[misc]
