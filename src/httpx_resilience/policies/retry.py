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

import email.utils
import math
import random
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
from ..exceptions import (
    ConfigurationError,
    HTTPRequestError,
    RequestTimeoutError,
)

__all__ = [
    "FailureKind",
    "RetryPolicy",
    "classify_exception",
    "parse_retry_after",
]

FailureKind = Literal["connect", "read", "fatal"]

_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_READ_ERRORS: tuple[type[BaseException], ...] = (
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
    httpx.NetworkError,
    httpx.TimeoutException,
    RequestTimeoutError,
    ConnectionError,
    TimeoutError,
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


def parse_retry_after(value: str, now_wall: float) -> float:
    """Parse a ``Retry-After`` value into seconds from now.

    Accepts delta-seconds (``"120"``, also a decimal such as ``"1.5"``) and an
    HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``); a date in the past gives 0.

    Raises:
        ValueError: the value is neither form (negative numbers included).
    """
    text = value.strip()
    if not text:
        raise ValueError("empty Retry-After")
    if text[0].isdigit():
        seconds = float(text)
        if not math.isfinite(seconds):
            raise ValueError(f"Retry-After is not finite: {value!r}")
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"Retry-After is neither seconds nor an HTTP-date: {value!r}") from exc
    if when.tzinfo is None:
        raise ValueError(f"Retry-After date has no time zone: {value!r}")
    return max(0.0, when.timestamp() - now_wall)


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
            [0, d/2]), ``"decorrelated"`` (uniform in [factor, 3 × previous]) or
            ``"none"``.
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
        if self.jitter not in JITTER_KINDS:
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

        Args:
            retry_number: how many retries were already made.
            previous: the previous delay, for decorrelated jitter.
            rng: the random source (a seeded one makes tests exact).
        """
        r = rng if rng is not None else _RNG
        base = self.backoff_factor
        cap = self.max_delay
        if self.jitter == "decorrelated":
            prev = previous if previous is not None and previous > 0 else base
            high = max(base, prev * 3.0)
            return min(cap, r.uniform(base, high)) if high > base else min(cap, base)
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

