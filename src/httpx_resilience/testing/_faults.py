"""Programming the chaos server: what a route answers, request by request.

- :class:`FaultMix` (random faults in fixed proportions) and :class:`Route`
  (what one path does) are immutable values; one answer is a
  :class:`~._fault.Fault`.
- :func:`_resolve` decides the answer to the n-th request of a route; the
  per-route progress lives apart, in a :class:`_RouteState`.
- :func:`_route_from_query` reads the route a query string asks for
  (``?status=503,200&latency=0.2``).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any, Final
from urllib.parse import parse_qsl

from ..clock import SYSTEM_CLOCK
from ._fault import Body, Fault, ResetMode, RetryAfter, _format_retry_after

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

# --------------------------------------------------------------------------- #
# Programming: what a route does                                              #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultMix:
    """Random faults in fixed proportions, reproducible with a ``seed``.

    Each request draws one outcome; the probabilities must add up to at most
    1, and the rest is the route's normal answer. With the same seed and the
    same request order, the same requests fail. The faults that still answer
    (``slow``, ``slow_body``, ``truncate``, ``reset_after_headers``, ``close``)
    keep the route's own body and headers.

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
        reset_after_headers: share of answers whose head is sent, then the
            connection is reset (the body never comes).
        truncate: share of answers whose body stops short of its
            ``Content-Length``, then the connection closes.
        slow_body: share of answers whose body drips in ``slow_body_chunk``-byte
            pieces, ``slow_body_drip`` seconds apart.
        slow_body_drip: seconds between two pieces of a slow body.
        slow_body_chunk: the size in bytes of each piece of a slow body.
        close: share of healthy answers after which the connection is closed
            without notice (see :attr:`Fault.close`).
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
    reset_after_headers: float = 0.0
    truncate: float = 0.0
    slow_body: float = 0.0
    slow_body_drip: float = 0.01
    slow_body_chunk: int = 64
    close: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        shares = self._shares()
        if any(
            isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1
            for share in shares
        ):
            raise ValueError(f"FaultMix: every share must be within 0..1, got {shares}")
        if sum(shares) > 1.0 + 1e-9:
            raise ValueError(f"FaultMix: the shares add up to {sum(shares):.3f} > 1")
        if self.slow_latency < 0 or self.slow_body_drip < 0:
            raise ValueError("FaultMix.slow_latency and slow_body_drip must be >= 0 seconds")
        if self.slow_body_chunk < 1:
            raise ValueError(f"FaultMix.slow_body_chunk must be >= 1, got {self.slow_body_chunk}")
        if self.retry_after is not None:
            _format_retry_after(self.retry_after)  # fail now, not inside the server thread

    def _shares(self) -> tuple[float, ...]:
        return (
            self.error_500,
            self.error_502,
            self.error_503,
            self.reset,
            self.hang,
            self.slow,
            self.rate_limited,
            self.reset_after_headers,
            self.truncate,
            self.slow_body,
            self.close,
        )

    def pick(self, rng: random.Random, base: Fault | None = None) -> Fault | None:
        """Draw the fault for one request, or ``None`` for the route's normal answer.

        Args:
            rng: the random generator (one per route, seeded with ``seed``).
            base: the route's normal answer, whose body and headers the
                faults that still answer keep (a default :class:`Fault` when omitted).
        """
        draw = rng.random()
        edge = 0.0
        for index, share in enumerate(self._shares()):
            edge += share
            if draw < edge:
                return self._outcome(index, base if base is not None else Fault())
        return None

    def _outcome(self, index: int, base: Fault) -> Fault:
        later = 1 if self.retry_after is None else self.retry_after
        if index == 0:
            return Fault(status=500)
        if index == 1:
            return Fault(status=502)
        if index == 2:
            return Fault(status=503, retry_after=self.retry_after)
        if index == 3:
            return Fault(reset="before_headers")
        if index == 4:
            return Fault(hang=True)
        if index == 6:
            return Fault(status=429, retry_after=later)
        healthy = base.healthy()
        if index == 5:
            return replace(healthy, latency=self.slow_latency)
        if index == 7:
            return replace(healthy, reset="after_headers")
        if index == 8:
            return replace(healthy, truncate=True)
        if index == 9:
            return replace(healthy, drip=self.slow_body_drip, drip_chunk=self.slow_body_chunk)
        return replace(healthy, close=True)


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
    fault: Fault = field(default_factory=Fault)
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
        drawn = route.mix.pick(state.rng, fault)
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
        "close",
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
            elif key in ("hang", "truncate", "close", "malformed_json"):
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
