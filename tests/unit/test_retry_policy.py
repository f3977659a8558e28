"""Unit tests of RetryPolicy: classification, backoff, Retry-After (pure, no I/O)."""

from __future__ import annotations

import random

import httpx
import pytest

from httpx_resilience import ConfigurationError, RequestTimeoutError
from httpx_resilience.policies.retry import RetryPolicy, classify_exception, parse_retry_after


def test_connect_phase_errors_are_safe_for_any_method() -> None:
    """Connect errors, connect timeouts and pool timeouts are retried even for POST."""
    p = RetryPolicy()
    for exc in (httpx.ConnectError("x"), httpx.ConnectTimeout("x"), httpx.PoolTimeout("x")):
        assert classify_exception(exc) == "connect"
        assert p.should_retry_exception(exc, "POST")


def test_read_phase_errors_only_for_idempotent_methods() -> None:
    """Read errors are retried for GET/PUT but not POST, unless an Idempotency-Key is present."""
    p = RetryPolicy()
    exc = httpx.ReadError("reset")
    assert classify_exception(exc) == "read"
    assert p.should_retry_exception(exc, "GET")
    assert p.should_retry_exception(exc, "put")
    assert not p.should_retry_exception(exc, "POST")
    assert p.should_retry_exception(exc, "POST", idempotency_key=True)


def test_attempt_timeout_is_a_read_phase_failure() -> None:
    """Our own attempt timeout counts as read-phase: the server may have acted."""
    assert classify_exception(RequestTimeoutError("t", timeout=1.0)) == "read"
    assert classify_exception(httpx.RemoteProtocolError("dropped")) == "read"


def test_fatal_errors_are_not_retried() -> None:
    """Programming errors and invalid URLs are never retried."""
    p = RetryPolicy()
    assert classify_exception(ValueError("bug")) == "fatal"
    assert not p.should_retry_exception(httpx.UnsupportedProtocol("ftp"), "GET")


def test_status_retry_respects_methods() -> None:
    """Retryable statuses are retried for retry methods only."""
    p = RetryPolicy()
    assert p.should_retry_status(503, "GET")
    assert not p.should_retry_status(503, "POST")
    assert not p.should_retry_status(404, "GET")
    assert RetryPolicy(methods={"POST"}).should_retry_status(503, "POST")


def test_exponential_backoff_without_jitter() -> None:
    """factor * 2**n, capped at max_delay."""
    p = RetryPolicy(jitter="none", backoff_factor=1.0, max_delay=5.0)
    assert [p.backoff(i) for i in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_and_equal_jitter_stay_in_range() -> None:
    """Full jitter is in [0, d]; equal jitter is in [d/2, d]."""
    rng = random.Random(1)
    full = RetryPolicy(jitter="full", backoff_factor=2.0)
    equal = RetryPolicy(jitter="equal", backoff_factor=2.0)
    for n in range(6):
        d = min(60.0, 2.0 * 2**n)
        assert 0.0 <= full.backoff(n, rng=rng) <= d
        assert d / 2 <= equal.backoff(n, rng=rng) <= d


def test_decorrelated_jitter_grows_from_previous_delay() -> None:
    """Decorrelated jitter is within [factor, 3 × previous] and capped."""
    rng = random.Random(2)
    p = RetryPolicy(jitter="decorrelated", backoff_factor=0.5, max_delay=10.0)
    prev = None
    for n in range(20):
        d = p.backoff(n, previous=prev, rng=rng)
        assert 0.5 <= d <= min(10.0, max(0.5, (prev or 0.5) * 3))
        prev = d


def test_huge_retry_numbers_do_not_overflow() -> None:
    """A very large retry number gives max_delay rather than an OverflowError."""
    p = RetryPolicy(jitter="none", max_delay=7.0)
    assert p.backoff(5000) == 7.0


def test_retry_after_delta_seconds_and_dates() -> None:
    """Retry-After accepts delta-seconds and HTTP-dates; past dates give 0."""
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    future = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert parse_retry_after(future, now) == pytest.approx(20.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0


@pytest.mark.parametrize("value", ["", "soon", "-5", "Mon, 99 Foo 2020", "nan"])
def test_invalid_retry_after_raises_value_error(value: str) -> None:
    """A value that is neither seconds nor an HTTP-date is rejected."""
    with pytest.raises(ValueError):
        parse_retry_after(value, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_factor": -1}, "backoff_factor"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": "wild"}, "jitter"),
        ({"statuses": {999}}, "statuses"),
        ({"methods": {"FETCH"}}, "methods"),
        ({"max_delay": float("inf")}, "max_delay"),
    ],
)
def test_invalid_policy_names_the_field(kwargs: dict[str, object], field: str) -> None:
    """A bad RetryPolicy value raises ConfigurationError (a ValueError) naming the field."""
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)
