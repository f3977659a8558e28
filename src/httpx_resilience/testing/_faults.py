"""Programming the chaos server: what a route answers, request by request.

- :class:`Fault` (one answer), :class:`FaultMix` (random faults in fixed
  proportions) and :class:`Route` (what one path does) are immutable values.
- :func:`_resolve` decides the answer to the n-th request of a route; the
  per-route progress lives apart, in a :class:`_RouteState`.
- :func:`_route_from_query` reads the route a query string asks for
  (``?status=503,200&latency=0.2``).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime, formatdate
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qsl

from ..clock import SYSTEM_CLOCK

__all__ = [
    "_DEFAULT_ROUTE",
    "Body",
    "Fault",
    "FaultMix",
    "ResetMode",
    "RetryAfter",
    "Route",
    "_RouteState",
    "_format_retry_after",
    "_resolve",
    "_route_from_query",
]

ResetMode = Literal["before_headers", "after_headers"]
"""Where a connection is reset: before anything is sent, or after the response head."""

RetryAfter: TypeAlias = str | int | float | datetime
Body: TypeAlias = bytes | str | Mapping[str, Any] | Sequence[Any]

_RESET_MODES: Final = ("before_headers", "after_headers")


def _format_retry_after(value: RetryAfter) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("retry_after: a datetime must be timezone-aware")
        return format_datetime(value.astimezone(timezone.utc), usegmt=True)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"retry_after: expected str, number or datetime, got {value!r}")
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------- #
# Programming: what a route does                                              #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """How the server answers one request.

    The default is a healthy ``200`` with a small JSON body. Faults apply in
    this order: ``latency``, then ``hang`` / ``reset`` / ``truncate`` /
    ``drip``; at most one of the last four makes sense at a time.

    Args:
        status: the response status code.
        latency: seconds to wait before the response head is sent.
        hang: never answer; the connection stays open until the client goes
            away or the server stops.
        retry_after: a ``Retry-After`` value added to non-2xx responses: a
            string is sent as is (delta-seconds or an HTTP-date), a number as
            delta-seconds, a timezone-aware :class:`~datetime.datetime` as an
            HTTP-date.
        reset: ``"before_headers"`` closes the TCP connection with RST
            (``SO_LINGER`` 0) without sending anything; ``"after_headers"``
            sends the status line and headers (with a ``Content-Length``), then
            resets.
        truncate: send a ``Content-Length`` larger than the body actually
            sent, then close the connection.
        drip: seconds to wait before each ``drip_chunk``-byte piece of the
            body (the head is sent at once). ``0`` disables dripping.
        drip_chunk: the size of each dripped piece in bytes.
        malformed_json: answer ``Content-Type: application/json`` with a body
            that is not valid JSON.
        body: the response body: bytes (``application/octet-stream``), str
            (``text/plain``) or a JSON-serialisable mapping/sequence
            (``application/json``). ``None`` means the default JSON body.
        body_size: answer a JSON body of exactly this many bytes (plain bytes
            when it is below 11), for large-body tests.
        headers: extra response headers; they override the server's own.

    Raises:
        ValueError: on an impossible combination or value.
    """

    status: int = 200
    latency: float = 0.0
    hang: bool = False
    retry_after: RetryAfter | None = None
    reset: ResetMode | None = None
    truncate: bool = False
    drip: float = 0.0
    drip_chunk: int = 16
    malformed_json: bool = False
    body: Body | None = None
    body_size: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"Fault.status must be within 100..599, got {self.status!r}")
        if self.latency < 0 or self.drip < 0:
            raise ValueError("Fault.latency and Fault.drip must be >= 0 seconds")
        if self.drip_chunk < 1:
            raise ValueError(f"Fault.drip_chunk must be >= 1 byte, got {self.drip_chunk!r}")
        if self.reset is not None and self.reset not in _RESET_MODES:
            raise ValueError(
                f"Fault.reset must be one of {_RESET_MODES} or None, got {self.reset!r}"
            )
        if self.body_size is not None and self.body_size < 0:
            raise ValueError(f"Fault.body_size must be >= 0, got {self.body_size!r}")
        if self.body is not None and self.body_size is not None:
            raise ValueError("Fault: give either body or body_size, not both")
        if self.retry_after is not None:
            _format_retry_after(self.retry_after)  # fail now, not inside the server thread
        for name, value in self.headers.items():
            if any(c in f"{name}{value}" for c in "\r\n") or not name:
                raise ValueError(f"Fault.headers: invalid header {name!r}: {value!r}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def healthy(self) -> Fault:
        """This fault's content (body, headers) with every fault removed: a plain 200."""
        return Fault(body=self.body, body_size=self.body_size, headers=self.headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultMix:
    """Random faults in fixed proportions, reproducible with a ``seed``.

    Each request draws one outcome; the probabilities must add up to at most
    1, and the rest is the route's normal answer. With the same seed and the
    same request order, the same requests fail.

    Args:
        error_500: share of ``500 Internal Server Error``.
        error_502: share of ``502 Bad Gateway``.
        error_503: share of ``503 Service Unavailable`` (with ``retry_after``).
        reset: share of connections reset before any byte is sent.
        hang: share of requests that never get an answer.
        slow: share of healthy but slow answers (``slow_latency`` seconds).
        slow_latency: the delay of a slow answer.
        rate_limited: share of ``429 Too Many Requests`` (with ``Retry-After``,
            ``retry_after`` or 1 second).
        retry_after: a ``Retry-After`` value for the 503 and 429 answers.
        seed: seeds the random generator; ``None`` draws differently each run.

    Raises:
        ValueError: when a share is outside 0..1 or the shares exceed 1.
    """

    error_500: float = 0.0
    error_502: float = 0.0
    error_503: float = 0.0
    reset: float = 0.0
    hang: float = 0.0
    slow: float = 0.0
    slow_latency: float = 0.5
    rate_limited: float = 0.0
    retry_after: RetryAfter | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        shares = self._shares()
        if any(not 0.0 <= share <= 1.0 for share in shares):
            raise ValueError(f"FaultMix: every share must be within 0..1, got {shares}")
        if sum(shares) > 1.0 + 1e-9:
            raise ValueError(f"FaultMix: the shares add up to {sum(shares):.3f} > 1")
        if self.slow_latency < 0:
            raise ValueError("FaultMix.slow_latency must be >= 0 seconds")

    def _shares(self) -> tuple[float, ...]:
        return (
            self.error_500,
            self.error_502,
            self.error_503,
            self.reset,
            self.hang,
            self.slow,
            self.rate_limited,
        )

    def pick(self, rng: random.Random) -> Fault | None:
        """Draw the fault for one request, or ``None`` for the route's normal answer.

        Args:
            rng: the random generator (one per route, seeded with ``seed``).
        """
        draw = rng.random()
        outcomes: tuple[Fault, ...] = (
            Fault(status=500),
            Fault(status=502),
            Fault(status=503, retry_after=self.retry_after),
            Fault(reset="before_headers"),
            Fault(hang=True),
            Fault(latency=self.slow_latency),
            Fault(status=429, retry_after=1 if self.retry_after is None else self.retry_after),
        )
        edge = 0.0
        for share, outcome in zip(self._shares(), outcomes, strict=True):
            edge += share
            if draw < edge:
                return outcome
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """What the server does for one path (see :meth:`ChaosServer.route`).

    For the n-th request to the route (counting from 1), the answer is, in
    order of precedence: a 429 if ``rate_limit`` is exceeded; a healthy 200
    if ``times`` is set and ``n > times``; ``steps[n-1]`` (the last step
    repeats); ``fault`` with ``statuses[n-1]`` as status (the last repeats),
    unless ``mix`` draws a fault.

    Args:
        path: the request path, matched exactly (the query string is ignored).
        fault: the base answer.
        statuses: a status sequence; overrides ``fault.status``.
        steps: one :class:`Fault` per request; overrides ``fault`` and ``statuses``.
        times: apply the faults to the first ``times`` requests only.
        rate_limit: requests per second the route accepts; above it, answer
            429 with ``Retry-After: 1`` (rejected requests do not use the quota).
        mix: random faults drawn per request.
    """

    path: str
    fault: Fault = Fault()
    statuses: tuple[int, ...] = ()
    steps: tuple[Fault, ...] = ()
    times: int | None = None
    rate_limit: int | None = None
    mix: FaultMix | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"Route.path must start with '/', got {self.path!r}")
        for status in self.statuses:
            if not 100 <= status <= 599:
                raise ValueError(f"Route.statuses: {status!r} is not a status code")
        if self.times is not None and self.times < 0:
            raise ValueError(f"Route.times must be >= 0, got {self.times!r}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"Route.rate_limit must be >= 1 per second, got {self.rate_limit!r}")


_DEFAULT_ROUTE: Final = Route(path="/")
_RATE_LIMITED: Final = Fault(status=429, retry_after=1, body={"ok": False, "error": "rate limited"})


@dataclass(slots=True)
class _RouteState:
    """Per-route runtime state (the policies above hold none)."""

    n: int = 0
    rng: random.Random | None = None
    window: deque[float] = field(default_factory=deque)


def _resolve(route: Route, state: _RouteState, now: float) -> Fault:
    """Decide the answer to the ``state.n``-th request of ``route`` (pure but for ``state``)."""
    if route.rate_limit is not None:
        window = state.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= route.rate_limit:
            return _RATE_LIMITED
        window.append(now)
    n = state.n
    if route.times is not None and n > route.times:
        return route.fault.healthy()
    if route.steps:
        return route.steps[min(n, len(route.steps)) - 1]
    fault = route.fault
    if route.statuses:
        fault = replace(fault, status=route.statuses[min(n, len(route.statuses)) - 1])
    if route.mix is not None and state.rng is not None:
        drawn = route.mix.pick(state.rng)
        if drawn is not None:
            return drawn
    return fault


# --------------------------------------------------------------------------- #
# Query-string faults                                                         #
# --------------------------------------------------------------------------- #

_QUERY_KEYS: Final = frozenset(
    {
        "status",
        "latency",
        "hang",
        "retry_after",
        "retry_after_date",
        "rate_limit",
        "reset",
        "truncate",
        "drip",
        "drip_chunk",
        "malformed_json",
        "body",
        "body_size",
        "header",
        "times",
    }
)
_TRUE: Final = frozenset({"", "1", "true", "yes", "on"})


def _route_from_query(path: str, query: str) -> Route | None:
    """The route a query string asks for, or ``None`` when it names no fault.

    Raises:
        ValueError: on an unparsable value (the server answers 400 with it).
    """
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in _QUERY_KEYS]
    if not params:
        return None
    fault: dict[str, Any] = {}
    extra_headers: dict[str, str] = {}
    statuses: tuple[int, ...] = ()
    times: int | None = None
    rate_limit: int | None = None
    for key, value in params:
        try:
            if key == "status":
                statuses = tuple(int(s) for s in value.split(",") if s.strip())
            elif key in ("latency", "drip"):
                fault[key] = float(value)
            elif key in ("hang", "truncate", "malformed_json"):
                fault[key] = value.lower() in _TRUE
            elif key == "retry_after":
                fault["retry_after"] = value
            elif key == "retry_after_date":
                fault["retry_after"] = formatdate(SYSTEM_CLOCK.wall() + float(value), usegmt=True)
            elif key == "reset":
                fault["reset"] = "before_headers" if value.lower() in _TRUE else value
            elif key in ("drip_chunk", "body_size"):
                fault[key] = int(value)
            elif key == "body":
                fault["body"] = value
            elif key == "header":
                name, sep, header_value = value.partition(":")
                if not sep:
                    raise ValueError("expected Name:Value")
                extra_headers[name.strip()] = header_value.strip()
            elif key == "times":
                times = int(value)
            else:  # rate_limit
                rate_limit = int(value)
        except ValueError as exc:
            raise ValueError(f"chaos query parameter {key}={value!r}: {exc}") from exc
    if extra_headers:
        fault["headers"] = extra_headers
    return Route(
        path=path,
        fault=Fault(**fault),
        statuses=statuses,
        times=times,
        rate_limit=rate_limit,
    )
