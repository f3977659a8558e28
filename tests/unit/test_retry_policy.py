"""Unit tests of RetryPolicy: classification, backoff, Retry-After (pure, no I/O)."""

from __future__ import annotations

import calendar
import itertools
import random
import statistics

import httpx
import pytest

from httpx_resilience import ConfigurationError, RequestTimeoutError
from httpx_resilience.policies.retry import (
    RETRY_AFTER_LIMIT,
    RetryPolicy,
    classify_exception,
    parse_retry_after,
    retry_after_delay,
)


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


def _aws_decorrelated(base: float, cap: float, retries: int, rng: random.Random) -> list[float]:
    """The original AWS formula, for comparison: sleep = min(cap, uniform(base, 3 × sleep))."""
    out, sleep = [], base
    for _ in range(retries):
        sleep = min(cap, rng.uniform(base, sleep * 3))
        out.append(sleep)
    return out


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def test_decorrelated_jitter_medians_double_from_the_first_delay() -> None:
    """V2 jitter: the first delay's median is near backoff_factor, then each retry's median
    about doubles (0.9, 1.1, 2, 4, 8 × factor), and every draw is in [0, cap]."""
    rng = random.Random(2)
    p = RetryPolicy(jitter="decorrelated", backoff_factor=0.5, max_delay=1000.0)
    samples = [[p.backoff(n, rng=rng) for _ in range(4000)] for n in range(6)]
    medians = [statistics.median(s) for s in samples]
    expected = [0.9, 1.14, 2.0, 4.0, 8.0, 16.0]
    for got, want in zip(medians, expected, strict=True):
        assert got == pytest.approx(0.5 * want, rel=0.08)
    means = [statistics.fmean(s) for s in samples]
    assert all(b > a for a, b in itertools.pairwise(means))  # grows in expectation
    for n, s in enumerate(samples):
        assert min(s) >= 0.0
        # Spread: a real distribution, neither a constant nor a coin flip.
        spread = (_quantile(s, 0.9) - _quantile(s, 0.1)) / medians[n]
        assert 0.5 < spread < 1.5


def test_decorrelated_jitter_does_not_pile_up_at_the_cap() -> None:
    """With a cap of 8 × the first delay, the AWS formula sends over a third of the fourth
    retries to exactly the cap; V2 sends few there until the median itself nears the cap."""
    cap, base = 8.0, 1.0
    p = RetryPolicy(jitter="decorrelated", backoff_factor=base, max_delay=cap)
    rng = random.Random(3)
    v2 = [[p.backoff(n, rng=rng) for _ in range(4000)] for n in range(4)]
    aws_runs = [_aws_decorrelated(base, cap, 4, rng) for _ in range(4000)]
    aws = [[run[n] for run in aws_runs] for n in range(4)]

    def at_cap(values: list[float]) -> float:
        return sum(v >= cap for v in values) / len(values)

    assert [at_cap(v2[n]) for n in range(3)] == [0.0, 0.0, 0.0]  # the rise is at most 4.3 × base
    assert at_cap(v2[3]) < 0.08  # median 4, the cap is 8
    assert at_cap(aws[3]) > 0.3  # the pile-up the formula replaces
    assert at_cap(aws[3]) > 5 * at_cap(v2[3])
    assert len(set(v2[3])) > 3600  # no other value repeats either


def test_decorrelated_jitter_is_reproducible_and_bounded_for_any_retry() -> None:
    """A seed gives the same delays; two numbers are drawn whatever the retry number; huge
    retry numbers give the cap; a zero factor gives 0."""
    p = RetryPolicy(jitter="decorrelated", backoff_factor=0.5, max_delay=10.0)
    a, b = random.Random(9), random.Random(9)
    assert [p.backoff(n, rng=a) for n in range(8)] == [p.backoff(n, rng=b) for n in range(8)]
    r0, r5 = random.Random(4), random.Random(4)
    p.backoff(0, rng=r0)
    p.backoff(5, rng=r5)
    assert r0.random() == r5.random()
    assert p.backoff(5000) == 10.0
    assert RetryPolicy(jitter="decorrelated", backoff_factor=0.0).backoff(3) == 0.0


def test_huge_retry_numbers_do_not_overflow() -> None:
    """A very large retry number gives max_delay rather than an OverflowError."""
    p = RetryPolicy(jitter="none", max_delay=7.0)
    assert p.backoff(5000) == 7.0


NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("007", 7.0),
        (" \t42\t ", 42.0),  # OWS around the value
        ("Tue, 14 Nov 2023 22:13:40 GMT", 20.0),  # IMF-fixdate
        ("Tuesday, 14-Nov-23 22:13:40 GMT", 20.0),  # RFC 850
        ("Tue Nov 14 22:13:40 2023", 20.0),  # asctime, GMT without saying so
        ("Sun Nov  6 08:49:37 1994", 0.0),  # asctime with a one-digit day; past: 0
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Mon, 14 Nov 2023 22:13:40 GMT", 20.0),  # a wrong weekday is redundant, not invalid
        ("Tuesday, 14-Nov-73 22:13:40 GMT", 2073.0),  # 49.99 years ahead: 2073
        ("Wednesday, 14-Nov-74 22:13:40 GMT", 0.0),  # 50+ years ahead: 1974
        ("Sat, 31 Dec 2023 23:59:60 GMT", 4_240_000.0),  # a leap second is a valid second
    ],
)
def test_retry_after_by_the_letter_of_rfc_9110(value: str, seconds: float) -> None:
    """Delta-seconds and the three HTTP-date forms, all GMT, relative to the wall clock."""
    got = retry_after_delay(value, NOW)
    if seconds == 2073.0:
        expected = calendar.timegm((2073, 11, 14, 22, 13, 40)) - NOW
    elif seconds == 4_240_000.0:
        expected = calendar.timegm((2024, 1, 1, 0, 0, 0)) - NOW
    else:
        expected = seconds
    assert got == pytest.approx(expected)
    assert parse_retry_after(value, NOW) == got


@pytest.mark.parametrize(
    "value",
    [
        "", "   ", "soon", "-5", "+5", "1.5", "1e3", "1_000", "0x10", "inf", "nan",
        "\u0665",  # ARABIC-INDIC DIGIT FIVE: int() reads it as 5
        "\uff13\uff10",  # fullwidth 30
        "\u00b2",  # superscript two (str.isdigit() is true)
        "5 s", "5;", "5\n", "\x0b5", "\xa05",  # junk, or whitespace that is not OWS
        "Mon, 99 Foo 2020",
        "Tue, 14 Nov 2023 22:13:40 gmt",  # GMT is case-sensitive
        "Tue, 14 Nov 2023 22:13:40 UTC",
        "Tue, 14 Nov 2023 22:13:40 +0000",
        "tue, 14 Nov 2023 22:13:40 GMT",
        "Tue, 14 nov 2023 22:13:40 GMT",
        "Tue,  14 Nov 2023 22:13:40 GMT",  # two spaces
        "Tue, 14 Nov 23 22:13:40 GMT",  # IMF-fixdate has a four-digit year
        "Tue, 30 Feb 2023 22:13:40 GMT",  # no such day
        "Tue, 14 Nov 2023 24:00:00 GMT",
        "Tue, 14 Nov 2023 22:60:00 GMT",
        "Tue, 14 Nov 2023 22:13:61 GMT",
        "Tue, 14 Nov 0000 22:13:40 GMT",  # there was no year 0
        "Tuesday, 14-Nov-2023 22:13:40 GMT",  # RFC 850 has a two-digit year
        "Tue, 14-Nov-23 22:13:40 GMT",  # RFC 850 spells the day out
        "Tue Nov 14 22:13:40 2023 GMT",
        "Tue Nov  14 22:13:40 2023",
        "Tue Nov 6 22:13:40 2023",  # asctime pads a one-digit day with a space
        "14 Nov 2023 22:13:40 GMT",  # email.utils takes it; HTTP does not
        "Tue, \u0661\u0664 Nov 2023 22:13:40 GMT",  # non-ASCII digits in a date
    ],
)
def test_invalid_retry_after_gives_none(value: str) -> None:
    """Anything else is invalid: None from retry_after_delay, ValueError from parse_retry_after."""
    assert retry_after_delay(value, NOW) is None
    with pytest.raises(ValueError, match="Retry-After"):
        parse_retry_after(value, NOW)


def test_huge_retry_after_values_are_clamped_not_overflowing() -> None:
    """A delta-seconds too large for a float, or a date in year 9999, gives the 2**31 limit."""
    assert retry_after_delay("9" * 5000, NOW) == RETRY_AFTER_LIMIT
    assert retry_after_delay("99999999999", NOW) == RETRY_AFTER_LIMIT
    assert retry_after_delay("Fri, 31 Dec 9999 23:59:59 GMT", NOW) == RETRY_AFTER_LIMIT
    assert retry_after_delay(str(2**31 - 1), NOW) == 2**31 - 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_factor": -1}, "backoff_factor"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": "wild"}, "jitter"),
        ({"jitter": []}, "jitter"),  # unhashable: still a ConfigurationError, not a TypeError
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
