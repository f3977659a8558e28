"""Property tests of the one Retry-After / HTTP-date parser (hypothesis, bounded examples).

* any text: never raises; the result is ``None`` or a finite float in [0, 2**31];
* valid delta-seconds (with OWS) give their value, clamped; anything with a
  character outside ASCII digits and OWS is refused;
* generated dates round-trip in all three HTTP-date forms;
* differential: where ``email.utils.parsedate_to_datetime`` and RFC 9110 should
  agree (four-digit years, asctime read as GMT, two-digit years both rules
  place in the same century), they give the same instant; anything our parser
  accepts as a date, email.utils reads as the same instant too (it is the
  laxer of the two), apart from RFC 850 years the two rules place differently.
"""

from __future__ import annotations

import calendar
import email.utils
import math
import time
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpx_resilience.policies.limiter._ratelimit_headers import header_pause
from httpx_resilience.policies.retry import (
    RETRY_AFTER_LIMIT,
    parse_decimal,
    parse_http_date,
    retry_after_delay,
)

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# "Now" anywhere from 1971 to 2200, as a Unix time.
nows = st.floats(min_value=3.2e7, max_value=7.2e9, allow_nan=False, allow_infinity=False)
ows = st.text(alphabet=" \t", max_size=3)


def imf_fixdate(d: datetime) -> str:
    return f"{DAYS[d.weekday()]}, {d.day:02d} {MONTHS[d.month - 1]} {d.year:04d} {d:%H:%M:%S} GMT"


def rfc850(d: datetime) -> str:
    return f"{LONG_DAYS[d.weekday()]}, {d.day:02d}-{MONTHS[d.month - 1]}-{d.year % 100:02d} {d:%H:%M:%S} GMT"


def asctime(d: datetime) -> str:
    return f"{DAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S} {d.year:04d}"


def unix(d: datetime) -> float:
    return float(calendar.timegm(d.timetuple()))


def email_unix(text: str) -> float:
    parsed = email.utils.parsedate_to_datetime(text)
    if parsed.tzinfo is None:  # asctime carries no zone: HTTP says GMT
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


whole_seconds = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))


@FUZZ
@given(st.text(max_size=60), nows)
def test_any_text_gives_none_or_a_finite_delay(value: str, now: float) -> None:
    """Whatever the header holds, the parser returns None or a delay in [0, 2**31]."""
    got = retry_after_delay(value, now)
    assert got is None or (math.isfinite(got) and 0.0 <= got <= RETRY_AFTER_LIMIT)


@FUZZ
@given(
    st.text(alphabet=st.sampled_from("0123456789 \t,:-GMTSunNov"), max_size=40)
    | st.builds(lambda a, b: a + b, st.sampled_from(["Sun, 06 Nov 1994 08:49:37 GMT",
                                                      "Sunday, 06-Nov-94 08:49:37 GMT",
                                                      "Sun Nov  6 08:49:37 1994"]),
                st.text(max_size=4)),
    nows,
)
def test_near_misses_never_raise(value: str, now: float) -> None:
    """Strings made of a date's own characters, or a valid date plus junk, never raise."""
    got = retry_after_delay(value, now)
    assert got is None or (math.isfinite(got) and 0.0 <= got <= RETRY_AFTER_LIMIT)


@FUZZ
@given(st.integers(min_value=0, max_value=10**40), ows, ows, nows)
def test_delta_seconds_round_trip_with_ows(n: int, left: str, right: str, now: float) -> None:
    """ASCII digits, with spaces or tabs around, are the delay (clamped to 2**31)."""
    assert retry_after_delay(f"{left}{n}{right}", now) == min(float(n), RETRY_AFTER_LIMIT)


@FUZZ
@given(st.text(min_size=1, max_size=12), nows)
def test_only_ascii_digits_are_delta_seconds(value: str, now: float) -> None:
    """A value that starts with a digit of any script is accepted only if every character
    is an ASCII digit or OWS around them; int() is laxer (other scripts, signs, '_')."""
    got = retry_after_delay(value, now)
    stripped = value.strip(" \t")
    if stripped[:1].isdigit():
        valid = stripped.isascii() and stripped.isdigit()
        assert (got is not None) == valid
        if valid:
            assert got == min(float(int(stripped)), RETRY_AFTER_LIMIT)


@FUZZ
@given(st.characters(categories=["Nd"]).filter(lambda c: not c.isascii()), nows)
def test_other_scripts_digits_are_refused(digit: str, now: float) -> None:
    """int() reads '٥' as 5; Retry-After does not."""
    assert int(digit) >= 0  # what the stdlib would have accepted
    assert retry_after_delay(digit, now) is None
    assert retry_after_delay(f"1{digit}", now) is None
    assert parse_decimal(digit) is None


@FUZZ
@given(whole_seconds, nows)
def test_imf_fixdate_and_asctime_round_trip(d: datetime, now: float) -> None:
    """A generated date in IMF-fixdate and asctime form reads back as the same instant."""
    for text in (imf_fixdate(d), asctime(d)):
        assert parse_http_date(text, now) == unix(d)
        expected = min(max(0.0, unix(d) - now), RETRY_AFTER_LIMIT)
        assert retry_after_delay(text, now) == expected


@FUZZ
@given(st.integers(min_value=-49 * 365 * 86400, max_value=49 * 365 * 86400), nows)
def test_rfc850_round_trips_within_fifty_years(offset: int, now: float) -> None:
    """An RFC 850 date within 49 years of now reads back as that instant (century included)."""
    d = datetime(1970, 1, 1) + timedelta(seconds=int(now) + offset)
    assert parse_http_date(rfc850(d), now) == unix(d)


@FUZZ
@given(st.integers(min_value=0, max_value=99), nows)
def test_rfc850_years_follow_the_fifty_year_rule(yy: int, now: float) -> None:
    """A two-digit year is read as the year within 50 years of now, past or future (RFC 9110
    §5.6.7: one that would be more than 50 years ahead is the past century's)."""
    got = parse_http_date(f"Monday, 01-Jan-{yy:02d} 00:00:00 GMT", now)
    assert got is not None
    year = time.gmtime(got).tm_year
    assert year % 100 == yy
    fifty = 50 * 365.2425 * 86400
    assert now - fifty < got <= now + fifty


@FUZZ
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    nows,
)
def test_differential_with_email_utils_on_four_digit_years(d: datetime, now: float) -> None:
    """IMF-fixdate and asctime: we and email.utils read the same instant."""
    d = d.replace(microsecond=0)
    for text in (imf_fixdate(d), asctime(d)):
        assert parse_http_date(text, now) == email_unix(text)


@FUZZ
@given(st.datetimes(min_value=datetime(1977, 1, 1), max_value=datetime(2068, 12, 31)))
def test_differential_with_email_utils_on_two_digit_years(d: datetime) -> None:
    """RFC 850 with now in mid-2026: both rules put 1977-2068 in the same century
    (email.utils: 69-99 → 19xx, 00-68 → 20xx; RFC 9110: within 50 years of now)."""
    d = d.replace(microsecond=0)
    now = unix(datetime(2026, 6, 1))
    text = rfc850(d)
    assert parse_http_date(text, now) == email_unix(text) == unix(d)


# email.utils reads a four-digit year below 100 ("0042") as a two-digit one: compare from 1000.
modern = whole_seconds.filter(lambda d: d.year >= 1000)
YEAR_1000 = float(calendar.timegm((1000, 1, 1, 0, 0, 0)))


@FUZZ
@given(
    st.one_of(modern.map(imf_fixdate), modern.map(asctime), modern.map(rfc850)).flatmap(
        lambda text: st.tuples(st.integers(0, len(text) - 1), st.characters(codec="ascii")).map(
            lambda edit: text[: edit[0]] + edit[1] + text[edit[0] + 1:]
        )
    ),
    nows,
)
def test_what_we_accept_email_utils_reads_the_same(text: str, now: float) -> None:
    """One character of a valid date changed: when we still accept it, it is a valid date that
    email.utils reads as the same instant (RFC 850 years and leap seconds aside)."""
    ours = parse_http_date(text, now)
    if ours is None or "-" in text or ":60 " in text or ours < YEAR_1000:
        return
    try:
        theirs = email_unix(text)
    except (TypeError, ValueError, OverflowError):
        raise AssertionError(f"we accept {text!r}, email.utils does not") from None
    assert ours == theirs


@FUZZ
@given(st.text(max_size=20), nows)
def test_rate_limit_headers_share_the_strict_numbers(value: str, now: float) -> None:
    """The limiter's header pacing reads numbers with the same parser: never raises, never a
    negative or non-finite pause, and a reset written with another script's digits is ignored."""
    import httpx

    raw = value.encode()  # as it arrives: bytes, which httpx decodes back to the same text
    headers = httpx.Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": raw})
    pause = header_pause(headers, now)
    expected = parse_decimal(value.strip(" \t").strip('"'), fraction=True)
    if expected is None or expected > 86_400:
        assert pause is None
    else:
        assert pause == expected
