"""``ClientConfig``: every knob of :class:`~httpx_resilience.AsyncHTTPClient`, validated.

A bad value, an unknown keyword or a contradiction raises
:class:`~httpx_resilience.ConfigurationError` naming the field and the allowed range.

Defaults never contradict what the caller set: a field that bounds, or is
bounded by, another one holds a *default* value (see :func:`as_default`) until
it is given, and a default adapts to the explicit value it would contradict —
the keep-alive default becomes ``min(20, max_connections)``, the pool default
``max(100, max_keepalive_connections)``, the attempt timeout default
``min(30, total_timeout)``. Only two explicit values can contradict each other.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, overload

from .exceptions import ConfigurationError

__all__ = [
    "DEFAULT_RETRY_METHODS",
    "DEFAULT_RETRY_STATUSES",
    "ClientConfig",
    "JitterKind",
    "as_default",
    "is_default",
]

JitterKind = Literal["full", "equal", "decorrelated", "none"]
JITTER_KINDS: frozenset[str] = frozenset({"full", "equal", "decorrelated", "none"})

DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_RETRY_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
)
HTTP_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


class _DefaultInt(int):
    """An ``int`` that is a default rather than a value the caller gave.

    ``base`` is the unadapted default (``20`` for the keep-alive pool even when
    it was adapted down to a smaller ``max_connections``). It compares, hashes,
    prints and computes as the plain number; arithmetic results are plain ints.
    """

    base: int

    def __new__(cls, value: int, base: int | None = None) -> _DefaultInt:
        obj = super().__new__(cls, value)
        obj.base = int(value) if base is None else base
        return obj

    __repr__ = int.__repr__

    def __reduce__(self) -> tuple[type[_DefaultInt], tuple[int, int]]:
        return (type(self), (int(self), self.base))


class _DefaultFloat(float):
    """A ``float`` that is a default, not a value the caller gave (see :class:`_DefaultInt`)."""

    base: float

    def __new__(cls, value: float, base: float | None = None) -> _DefaultFloat:
        obj = super().__new__(cls, value)
        obj.base = float(value) if base is None else base
        return obj

    __repr__ = float.__repr__

    def __reduce__(self) -> tuple[type[_DefaultFloat], tuple[float, float]]:
        return (type(self), (float(self), self.base))


def is_default(value: object) -> bool:
    """Whether ``value`` is a default (from :func:`as_default` or a ``ClientConfig`` default).

    Only the fields that adapt to others carry this mark: ``timeout``,
    ``max_connections`` and ``max_keepalive_connections``.
    """
    return isinstance(value, (_DefaultInt, _DefaultFloat))


@overload
def as_default(value: int) -> int: ...
@overload
def as_default(value: float) -> float: ...
def as_default(value: float) -> float:
    """``value`` marked as a default: in a :class:`ClientConfig` it yields to given values.

    ``ClientConfig(timeout=as_default(5.0), total_timeout=2.0)`` has a 2 s
    attempt timeout, where ``timeout=5.0`` would contradict ``total_timeout``.
    A value that is already a default keeps its original base. Integers stay
    integers; anything else is returned unchanged.
    """
    if is_default(value) or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _DefaultInt(value)
    if isinstance(value, float):
        return _DefaultFloat(value)
    return value


def _base(value: float) -> float:
    base: float = getattr(value, "base", value)
    return base


#: The fields whose default adapts to another field's explicit value.
ADAPTIVE_FIELDS: frozenset[str] = frozenset(
    {"timeout", "max_connections", "max_keepalive_connections"}
)


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_min: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` is a number in range."""
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ConfigurationError(
            f"{name} must be {kind}, got {value!r}", field=name
        )
    assert isinstance(value, (int, float))
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigurationError(f"{name} must be finite, got {value!r}", field=name)
    if isinstance(value, int) and not integer and abs(value) > 2**53:
        # the policies compute with floats: an integer a float cannot hold overflows later
        raise ConfigurationError(f"{name} must be at most 2**53, got an integer of "
                                 f"{len(str(abs(value)))} digits", field=name)
    low = ""
    if minimum is not None:
        low = f"> {minimum:g}" if exclusive_min else f">= {minimum:g}"
    rng = " and ".join(p for p in (low, f"<= {maximum:g}" if maximum is not None else "") if p)
    if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
        raise ConfigurationError(f"{name} must be {rng}, got {value!r}", field=name)
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be {rng}, got {value!r}", field=name)


def normalize_statuses(name: str, value: Collection[int]) -> frozenset[int]:
    """Validate a set of HTTP status codes (100-599)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise ConfigurationError(f"{name} must be a set of status codes, got {value!r}", field=name)
    for code in value:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigurationError(
                f"{name} must contain HTTP status codes 100-599, got {code!r}", field=name
            )
    return frozenset(value)


def normalize_methods(name: str, value: Collection[str]) -> frozenset[str]:
    """Validate a set of HTTP methods; they are upper-cased."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise ConfigurationError(
            f"{name} must be a set of HTTP methods such as {{'GET', 'PUT'}}, got {value!r}",
            field=name,
        )
    out = set()
    for m in value:
        if not isinstance(m, str) or m.upper() not in HTTP_METHODS:
            raise ConfigurationError(
                f"{name} contains {m!r}, which is not an HTTP method "
                f"(one of {', '.join(sorted(HTTP_METHODS))})",
                field=name,
            )
        out.add(m.upper())
    return frozenset(out)


def reject_unknown(cls_name: str, allowed: Collection[str], given: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigurationError` for keywords not in ``allowed``, suggesting the closest."""
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"{cls_name} has no setting {key!r}{hint}", field=key)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Settings of an :class:`~httpx_resilience.AsyncHTTPClient`.

    Times are in seconds. A field left unset never contradicts one that is
    given: ``ClientConfig(max_connections=10)`` keeps at most 10 idle
    connections, ``ClientConfig(total_timeout=0.5)`` gives each attempt 0.5 s.
    Only two given values can contradict each other (the error names both).
    ``dataclasses.replace`` keeps this: a replaced field is given, and a
    default adapted to the old value adapts again to the new one. Equality
    compares the values only.

    ``retry_attempts`` counts *retries after the first
    attempt*: the default 3 allows up to 4 attempts, waiting about 1, 2 and 4 s
    (``retry_backoff_factor * 2**n``, capped at ``retry_max_delay``, with jitter).

    Args:
        timeout: limit for one attempt (connect + send + headers + body); by
            default 30 s, or ``total_timeout`` when that is shorter.
        total_timeout: limit for the whole logical request, retries and
            backoff included; ``None`` for none. Each attempt's timeout
            shrinks to what is left, and a backoff that does not fit is not slept.
        max_connections: connection pool size; by default 100, or
            ``max_keepalive_connections`` when that is larger.
        max_keepalive_connections: idle connections kept (``<= max_connections``);
            by default 20, or ``max_connections`` when that is smaller.
        keepalive_expiry: seconds an idle connection is kept (httpx's 5 s: with
            30 s, httpx's own pool was measured 2.3× slower at 64 concurrent requests).
        follow_redirects: follow 3xx responses.
        verify_ssl: verify TLS certificates (leave on).
        retry_attempts: retries after the first attempt (0 disables retries).
        retry_backoff_factor: first backoff delay.
        retry_max_delay: cap on any one delay; a ``Retry-After`` beyond it ends
            the retries at once instead of sleeping.
        retry_jitter: ``"full"``, ``"equal"``, ``"decorrelated"`` or ``"none"``.
        retry_statuses: statuses that are retried (for retryable methods).
        retry_methods: methods whose read-phase failures and statuses are
            retried. POST/PATCH are retried only when listed here or when the
            request carries an ``Idempotency-Key``.
        respect_retry_after: honour ``Retry-After`` on 429 and 503.
        retry_budget_ratio: retries allowed as a fraction of recent requests per host.
        retry_budget_min_per_second: retries per second always allowed per host.
        retry_budget_ttl: window (seconds) over which the budget counts.
        request_id_header: header carrying one id per logical request; ``None`` disables it.
        http2: enable HTTP/2 (needs the ``h2`` package; implies the httpx transport).
        transport: the inner transport when none is given: ``"httpx"``
            (``httpx.AsyncHTTPTransport``), ``"native"`` (our HTTP/1.1 client
            over asyncio and httptools; needs the ``fast`` extra; the cheapest
            per request), ``"aiohttp"`` (needs the ``aiohttp`` extra) or
            ``"auto"`` (with HTTP/2 off: native when httptools is installed,
            else aiohttp when installed, else httpx).
        cookies: keep cookies the server sets and send them back (a cookie
            jar, as a browser would). Off by default: API clients are usually stateless.
        headers: default headers sent on every request.
        max_response_bytes: cap on a buffered response body (decoded bytes); a
            larger body fails with :class:`~httpx_resilience.ResponseTooLargeError`
            naming the limit. ``None`` for no cap. Streamed responses are the
            caller's to bound. A request may set its own cap.
    """

    timeout: float = _DefaultFloat(30.0)
    total_timeout: float | None = None
    max_connections: int = _DefaultInt(100)
    max_keepalive_connections: int = _DefaultInt(20)
    keepalive_expiry: float = 5.0
    follow_redirects: bool = False
    verify_ssl: bool = True
    retry_attempts: int = 3
    retry_backoff_factor: float = 1.0
    retry_max_delay: float = 60.0
    retry_jitter: JitterKind = "full"
    retry_statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    retry_methods: frozenset[str] = field(default=DEFAULT_RETRY_METHODS)
    respect_retry_after: bool = True
    retry_budget_ratio: float = 0.2
    retry_budget_min_per_second: float = 10.0
    retry_budget_ttl: float = 10.0
    request_id_header: str | None = "X-Request-Id"
    http2: bool = False
    transport: Literal["httpx", "native", "aiohttp", "auto"] = "auto"
    cookies: bool = False
    headers: Mapping[str, str] | None = None
    max_response_bytes: int | None = 100 * 1024 * 1024

    def __post_init__(self) -> None:
        check_number("timeout", self.timeout, minimum=0, exclusive_min=True)
        check_number("total_timeout", self.total_timeout, minimum=0, exclusive_min=True,
                     optional=True)
        check_number("max_connections", self.max_connections, minimum=1, integer=True)
        check_number("max_keepalive_connections", self.max_keepalive_connections, minimum=0,
                     integer=True)
        check_number("keepalive_expiry", self.keepalive_expiry, minimum=0)
        check_number("retry_attempts", self.retry_attempts, minimum=0, maximum=100, integer=True)
        check_number("retry_backoff_factor", self.retry_backoff_factor, minimum=0)
        check_number("retry_max_delay", self.retry_max_delay, minimum=0)
        check_number("retry_budget_ratio", self.retry_budget_ratio, minimum=0, maximum=10)
        check_number("retry_budget_min_per_second", self.retry_budget_min_per_second, minimum=0)
        check_number("retry_budget_ttl", self.retry_budget_ttl, minimum=0.001)
        check_number("max_response_bytes", self.max_response_bytes, minimum=1, integer=True,
                     optional=True)
        for flag in ("follow_redirects", "verify_ssl", "respect_retry_after", "http2", "cookies"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigurationError(
                    f"{flag} must be True or False, got {getattr(self, flag)!r}", field=flag
                )
        if not isinstance(self.retry_jitter, str) or self.retry_jitter not in JITTER_KINDS:
            raise ConfigurationError(
                f"retry_jitter must be one of {sorted(JITTER_KINDS)}, got {self.retry_jitter!r}",
                field="retry_jitter",
            )
        object.__setattr__(
            self, "retry_statuses", normalize_statuses("retry_statuses", self.retry_statuses)
        )
        object.__setattr__(
            self, "retry_methods", normalize_methods("retry_methods", self.retry_methods)
        )
        if self.transport not in ("httpx", "native", "aiohttp", "auto"):
            raise ConfigurationError(
                "transport must be 'httpx', 'native', 'aiohttp' or 'auto', "
                f"got {self.transport!r}",
                field="transport",
            )
        if self.transport in ("native", "aiohttp") and self.http2:
            raise ConfigurationError(
                f"http2=True needs transport='httpx' (or 'auto'): the {self.transport} "
                "transport speaks HTTP/1.1 only",
                field="http2",
            )
        self._adapt_defaults()
        if self.request_id_header is not None and (
            not isinstance(self.request_id_header, str) or not self.request_id_header.strip()
        ):
            raise ConfigurationError(
                "request_id_header must be a header name or None", field="request_id_header"
            )

    def _adapt_defaults(self) -> None:
        """Adapt each default to the explicit value it would contradict; refuse two explicit ones.

        A default is re-derived from its base every time, so a default adapted
        to an old value (kept by ``dataclasses.replace``) adapts to the new one.
        """
        keep, pool = self.max_keepalive_connections, self.max_connections
        if is_default(pool):
            base = int(_base(pool))
            pool = _DefaultInt(base if is_default(keep) else max(base, keep), base)
        if is_default(keep):
            base = int(_base(keep))
            keep = _DefaultInt(min(base, pool), base)
        elif keep > pool:
            raise ConfigurationError(
                f"max_keepalive_connections ({keep}) must be <= max_connections ({pool}): both "
                "were given; lower max_keepalive_connections or leave it unset (its default "
                "follows max_connections)",
                field="max_keepalive_connections",
            )
        object.__setattr__(self, "max_connections", pool)
        object.__setattr__(self, "max_keepalive_connections", keep)
        timeout, total = self.timeout, self.total_timeout
        if is_default(timeout):
            base_t = float(_base(timeout))
            timeout = _DefaultFloat(base_t if total is None else min(base_t, total), base_t)
        elif total is not None and timeout > total:
            raise ConfigurationError(
                f"timeout ({timeout:g} s, one attempt) must be <= total_timeout "
                f"({total:g} s, the whole request): both were given; lower timeout or leave "
                "it unset (its default follows total_timeout)",
                field="timeout",
            )
        object.__setattr__(self, "timeout", timeout)

    @property
    def default_fields(self) -> frozenset[str]:
        """The adaptive fields (``timeout``, the pool sizes) that hold a default value."""
        return frozenset(name for name in ADAPTIVE_FIELDS if is_default(getattr(self, name)))


_FIELD_NAMES = frozenset(f.name for f in fields(ClientConfig))
_generated_init = ClientConfig.__init__


def _checked_init(self: ClientConfig, *args: Any, **kwargs: Any) -> None:
    if args:
        raise ConfigurationError(
            "ClientConfig takes keyword arguments only, e.g. ClientConfig(timeout=5.0)"
        )
    reject_unknown("ClientConfig", _FIELD_NAMES, kwargs)
    _generated_init(self, **kwargs)


ClientConfig.__init__ = _checked_init  # type: ignore[method-assign]
