"""``RetryPolicy``: which failures are retried, how long to wait, and when to stop.

Everything here is pure: a policy is an immutable value, and the decision for
an outcome is a function of (policy, attempt, outcome, clock reading). The
transport and the generic :func:`~httpx_resilience.retry_async` do the I/O.

Failures are classified the way urllib3 does it:

* **connect** (connect error, connect timeout, pool timeout): nothing was
  sent, so any method may be retried;
* **read** (read/write errors and timeouts, a dropped connection, an error
  while reading the body, an attempt timeout): the server may have acted, so
  only methods in ``methods`` or requests with an ``Idempotency-Key`` are retried;
* **status** (a status in ``statuses``): like read failures.
"""

from __future__ import annotations

import calendar
import math
import random
import time
from dataclasses import dataclass, field
from typing import Literal

import httpx

from ..config import (
    DEFAULT_RETRY_METHODS,
    DEFAULT_RETRY_STATUSES,
    JITTER_KINDS,
    JitterKind,
    check_number,
    normalize_methods,
    normalize_statuses,
)
from ..exceptions import ConfigurationError, HTTPRequestError, RequestTimeoutError

__all__ = [
    "RETRY_AFTER_LIMIT",
    "FailureKind",
    "RetryPolicy",
    "classify_exception",
    "parse_decimal",
    "parse_http_date",
    "parse_retry_after",
    "retry_after_delay",
]

FailureKind = Literal["connect", "read", "fatal"]

_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
)
_READ_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ReadError, httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout,
    httpx.RemoteProtocolError, httpx.NetworkError, httpx.TimeoutException,
    RequestTimeoutError, ConnectionError, TimeoutError,
)


def classify_exception(exc: BaseException) -> FailureKind:
    """Say whether ``exc`` happened before the request left (``"connect"``), after
    it may have reached the server (``"read"``), or is not a transient fault (``"fatal"``).
    """
    if isinstance(exc, _CONNECT_ERRORS):
        return "connect"
    if isinstance(exc, HTTPRequestError) and not isinstance(exc, RequestTimeoutError):
        cause = exc.__cause__
        return classify_exception(cause) if cause is not None else "fatal"
    if isinstance(exc, _READ_ERRORS):
        return "read"
    return "fatal"


RETRY_AFTER_LIMIT = 2.0**31
"""The largest delay a ``Retry-After`` gives, in seconds (about 68 years).

Larger delta-seconds, and dates further away, are clamped to it: RFC 9111
§1.2.2 gives 2³¹ as the value of a delta-seconds too large to represent.
"""

_OWS = " \t"
_DAY_NAMES = frozenset({"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
_LONG_DAY_NAMES = frozenset(
    {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}
_FIFTY_YEARS = 50 * 365.2425 * 86_400.0
_CENTURY = 100 * 365.2425 * 86_400.0


def _digits(text: str, size: int = 0) -> bool:
    """Whether ``text`` is ASCII digits only (exactly ``size`` of them when given)."""
    return text.isascii() and text.isdigit() and (size == 0 or len(text) == size)


def parse_decimal(text: str, *, fraction: bool = False) -> float | None:
    """Read a non-negative ASCII decimal number: ``1*DIGIT``, or with ``fraction``
    also ``1*DIGIT "." 1*DIGIT``. Surrounding spaces and tabs (OWS) are allowed.

    No sign, exponent, underscore, ``inf``/``nan`` or other scripts' digits
    (which :func:`int` and :func:`float` accept). Never raises; a number too
    large for a float gives ``math.inf``, so callers clamp.

    Returns:
        the value, or ``None`` when ``text`` is not such a number.
    """
    text = text.strip(_OWS)
    whole, dot, frac = text.partition(".") if fraction else (text, "", "")
    if not _digits(whole) or (dot and not _digits(frac)):
        return None
    return float(text)  # an ASCII digit string: float() cannot fail, it saturates at inf


def _time_of_day(text: str) -> tuple[int, int, int] | None:
    """``HH:MM:SS`` (two digits each; a leap second 60 is allowed)."""
    if len(text) != 8 or text[2] != ":" or text[5] != ":":
        return None
    h, m, s = text[:2], text[3:5], text[6:]
    if not (_digits(h) and _digits(m) and _digits(s)):
        return None
    hms = int(h), int(m), int(s)
    return hms if hms[0] <= 23 and hms[1] <= 59 and hms[2] <= 60 else None


def _rfc850_year(yy: int, month: int, day: int, now_wall: float) -> int:
    """The year of a two-digit RFC 850 year (RFC 9110 §5.6.7): the one within 50
    years of now; a date more than 50 years ahead is read as the past century's."""
    now_year = time.gmtime(min(max(now_wall, 0.0), 253_402_300_799.0)).tm_year
    year = now_year - now_year % 100 + yy
    when = calendar.timegm((year, month, min(day, 28), 0, 0, 0))
    if when > now_wall + _FIFTY_YEARS:
        year -= 100
    elif when <= now_wall + _FIFTY_YEARS - _CENTURY:
        year += 100
    return year


def parse_http_date(value: str, now_wall: float) -> float | None:
    """Read an HTTP-date (RFC 9110 §5.6.7) as a Unix time, or ``None``.

    All three forms are GMT: IMF-fixdate ``Sun, 06 Nov 1994 08:49:37 GMT``,
    the obsolete RFC 850 ``Sunday, 06-Nov-94 08:49:37 GMT`` (a two-digit year
    more than 50 years after ``now_wall`` is the past century's) and asctime
    ``Sun Nov  6 08:49:37 1994`` (no zone: GMT). Names, ``GMT`` and single
    spaces are matched exactly as the grammar spells them; the weekday is not
    checked against the date (it is redundant); surrounding OWS is allowed.
    Never raises.
    """
    parts = value.strip(_OWS).split(" ")
    first, n = parts[0], len(parts)
    name = first[:-1] if first[-1:] == "," else ""
    yy = ""
    if n == 6 and name in _DAY_NAMES and parts[5] == "GMT":  # IMF-fixdate
        day, month, year, hms = parts[1], parts[2], parts[3], parts[4]
        if not (_digits(day, 2) and _digits(year, 4)):
            return None
    elif n == 4 and name in _LONG_DAY_NAMES and parts[3] == "GMT":  # RFC 850
        date, hms = parts[1].split("-"), parts[2]
        if len(date) != 3 or not (_digits(date[0], 2) and _digits(date[2], 2)):
            return None
        day, month, year, yy = date[0], date[1], "", date[2]
    elif first in _DAY_NAMES and n in (5, 6):  # asctime: "Nov  6" or "Nov 16"
        if len(parts) == 6:
            if parts[2] != "" or not _digits(parts[3], 1):
                return None
            del parts[2]
        elif not _digits(parts[2], 2):
            return None
        month, day, hms, year = parts[1], parts[2], parts[3], parts[4]
        if not _digits(year, 4):
            return None
    else:
        return None
    mon = _MONTHS.get(month)
    clock = _time_of_day(hms)
    if mon is None or clock is None:
        return None
    d = int(day)
    y = int(year) if year else _rfc850_year(int(yy), mon, d, now_wall)
    if y < 1 or not 1 <= d <= calendar.monthrange(y, mon)[1]:
        return None
    return float(calendar.timegm((y, mon, d, *clock)))


def retry_after_delay(value: str, now_wall: float) -> float | None:
    """The delay a ``Retry-After`` value asks for, in seconds from ``now_wall``.

    By the letter of RFC 9110 §10.2.3: delta-seconds (``1*DIGIT``, ASCII only:
    no sign, no decimal point) or an HTTP-date (:func:`parse_http_date`), with
    optional spaces or tabs around. A date in the past gives 0; anything
    larger than :data:`RETRY_AFTER_LIMIT` is clamped to it. Never raises.

    Returns:
        a finite delay in ``[0, RETRY_AFTER_LIMIT]``, or ``None`` when the value
        is invalid (the caller logs it and uses its own backoff).
    """
    if not isinstance(value, str):
        return None
    text = value.strip(_OWS)
    if text[:1].isdigit():
        seconds = parse_decimal(text)
    else:
        when = parse_http_date(text, now_wall)
        seconds = None if when is None else max(0.0, when - now_wall)
    return None if seconds is None else min(seconds, RETRY_AFTER_LIMIT)


def parse_retry_after(value: str, now_wall: float) -> float:
    """Like :func:`retry_after_delay`, but an invalid value raises.

    Raises:
        ValueError: the value is neither delta-seconds nor an HTTP-date.
    """
    seconds = retry_after_delay(value, now_wall)
    if seconds is None:
        raise ValueError(
            f"Retry-After must be delta-seconds (ASCII digits) or an HTTP-date, got {value[:64]!r}"
        )
    return seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a request is retried. An immutable value; vary it with :func:`dataclasses.replace`.

    Args:
        max_attempts: attempts in all, the first included (1 disables retries).
        backoff_factor: the first delay; retry ``n`` (from 0) waits
            ``backoff_factor * multiplier**n``, capped at ``max_delay``, then jittered.
        multiplier: growth of the delay per retry.
        max_delay: cap on a delay; a server's ``Retry-After`` above it ends the
            retries at once (the value is in the error) instead of sleeping.
        jitter: ``"full"`` (uniform in [0, d]), ``"equal"`` (d/2 + uniform in
            [0, d/2]), ``"decorrelated"`` (the smooth "V2" formula Polly uses:
            the first delay is about ``backoff_factor``, later ones about
            double the one before, spread without piling up at the cap;
            ``multiplier`` does not apply) or ``"none"``.
        statuses: statuses that are retried.
        methods: methods whose read-phase failures and statuses are retried.
        retry_connect_errors: retry failures that happened before the request
            left (safe for every method).
        retry_read_errors: retry failures after it may have been received
            (for ``methods`` and requests with an ``Idempotency-Key`` only).
        respect_retry_after: honour ``Retry-After`` on ``retry_after_statuses``.
        retry_after_statuses: statuses whose ``Retry-After`` is honoured (429, 503).
    """

    max_attempts: int = 4
    backoff_factor: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: JitterKind = "full"
    statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    methods: frozenset[str] = field(default=DEFAULT_RETRY_METHODS)
    retry_connect_errors: bool = True
    retry_read_errors: bool = True
    respect_retry_after: bool = True
    retry_after_statuses: frozenset[int] = frozenset({429, 503})

    def __post_init__(self) -> None:
        check_number("max_attempts", self.max_attempts, minimum=1, maximum=101, integer=True)
        check_number("backoff_factor", self.backoff_factor, minimum=0)
        check_number("multiplier", self.multiplier, minimum=1)
        check_number("max_delay", self.max_delay, minimum=0)
        if not isinstance(self.jitter, str) or self.jitter not in JITTER_KINDS:
            raise ConfigurationError(
                f"jitter must be one of {sorted(JITTER_KINDS)}, got {self.jitter!r}",
                field="jitter",
            )
        object.__setattr__(self, "statuses", normalize_statuses("statuses", self.statuses))
        object.__setattr__(self, "methods", normalize_methods("methods", self.methods))
        object.__setattr__(
            self,
            "retry_after_statuses",
            normalize_statuses("retry_after_statuses", self.retry_after_statuses),
        )

    @classmethod
    def from_config(cls, config: object) -> RetryPolicy:
        """Build the policy described by a :class:`~httpx_resilience.ClientConfig`."""
        from ..config import ClientConfig

        assert isinstance(config, ClientConfig)
        return cls(
            max_attempts=config.retry_attempts + 1,
            backoff_factor=config.retry_backoff_factor,
            max_delay=config.retry_max_delay,
            jitter=config.retry_jitter,
            statuses=config.retry_statuses,
            methods=config.retry_methods,
            respect_retry_after=config.respect_retry_after,
        )

    # -- pure decisions ---------------------------------------------------------------

    def is_retryable_method(self, method: str, *, idempotency_key: bool = False) -> bool:
        """Whether read-phase failures and statuses may be retried for ``method``."""
        return idempotency_key or method.upper() in self.methods

    def should_retry_exception(
        self, exc: BaseException, method: str, *, idempotency_key: bool = False
    ) -> bool:
        """Whether ``exc`` is worth another attempt for this method."""
        kind = classify_exception(exc)
        if kind == "connect":
            return self.retry_connect_errors
        if kind == "read":
            return self.retry_read_errors and self.is_retryable_method(
                method, idempotency_key=idempotency_key
            )
        return False

    def should_retry_status(
        self, status_code: int, method: str, *, idempotency_key: bool = False
    ) -> bool:
        """Whether a response with ``status_code`` is worth another attempt."""
        return status_code in self.statuses and self.is_retryable_method(
            method, idempotency_key=idempotency_key
        )

    def backoff(
        self,
        retry_number: int,
        *,
        previous: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """The delay before retry ``retry_number`` (0 for the first retry).

        A pure value: the testing switch does not change it; the loops that
        sleep (the pipeline's decision, :func:`~httpx_resilience.retry_async`)
        wait 0 s instead while it is on.

        Args:
            retry_number: how many retries were already made.
            previous: the previous delay; accepted for callers that track it,
                no jitter kind needs it.
            rng: the random source (a seeded one makes tests exact). Every
                kind but ``"none"`` draws the same count of numbers for any
                ``retry_number``, so seeded runs stay in step.
        """
        r = rng if rng is not None else _RNG
        base = self.backoff_factor
        cap = self.max_delay
        if self.jitter == "decorrelated":
            d = _decorrelated(retry_number, r)
            return min(cap, base * d) if base > 0 else 0.0
        try:
            d = min(cap, base * self.multiplier**retry_number)
        except OverflowError:
            d = cap
        if self.jitter == "full":
            return r.uniform(0.0, d)
        if self.jitter == "equal":
            return d / 2.0 + r.uniform(0.0, d / 2.0)
        return d

    def retry_after_for(self, status_code: int) -> bool:
        """Whether a ``Retry-After`` on this status is honoured."""
        return self.respect_retry_after and status_code in self.retry_after_statuses


_RNG = random.Random()


def _v2_curve(t: float) -> float:
    """The decorrelated-jitter curve: ``2**t * tanh(sqrt(4 t))``, increasing from 0."""
    return math.pow(2.0, t) * math.tanh(math.sqrt(4.0 * t))


def _decorrelated(n: int, rng: random.Random) -> float:
    """Retry ``n``'s delay, in units of the first delay, by the "V2" decorrelated jitter.

    The formula Polly adopted in place of AWS's ``uniform(base, 3 × previous)``
    (which piles delays up at the cap and spikes): a retry's time on the
    curve is ``n + u`` with ``u`` uniform in [0, 1), and its delay is the
    curve's rise since the previous retry's time ``n - 1 + u'``, scaled by
    1/1.4 so that the medians fall near 0.9, 1.1, 2, 4, 8, ... first delays.
    Successive retries draw their times independently here (the pipeline
    carries no jitter state), so each delay has the formula's distribution
    and the delays are uncorrelated. Growth is by 2 per retry whatever the
    policy's ``multiplier``: the curve's constants are fitted to 2.
    """
    u_now, u_prev = rng.random(), rng.random()  # always two draws
    if n >= 1000:  # 2**1000 first delays: past any cap, and 2.0**1024 overflows
        return math.inf
    prev = _v2_curve(n - 1 + u_prev) if n > 0 else 0.0
    return (_v2_curve(n + u_now) - prev) / 1.4

