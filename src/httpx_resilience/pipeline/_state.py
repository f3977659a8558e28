"""One logical request's progress through the retry loop: the loop's only mutable state.

:func:`open_state` opens it when a request enters either path (async or sync).

:class:`~httpx_resilience.ResilientTransport` builds one :class:`RequestState`
when a request enters the loop and hands it to its collaborators (the attempt
runner, the hedger, the reporter) instead of a dozen loose arguments. The
first block of fields is fixed for the request once it starts (what was asked,
which per-host policies apply, when the deadline falls); the second block is
the progress so far, changed only by the loop; the third is what the latest
attempt produced, which the retry decision and the reports read.

A ``__slots__`` class rather than a dataclass: it is built on every request,
and a plain ``__init__`` is the cheapest way to build it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import httpx

from ..auth.base import strip_foreign_credentials
from ._checks import check_ext, override
from ._outcome import EXTENSION_KEY, is_shareable
from ._request_id import new_request_id, scan_headers

if TYPE_CHECKING:
    from ..clock import Clock
    from ..policies.breaker import CircuitBreaker
    from ..policies.fallback import Fallback
    from ..policies.hedging import HedgingPolicy, LatencyTracker
    from ..policies.limiter import RateLimiter
    from ..policies.retry import RetryPolicy
    from ..policies.throttle import AdaptiveThrottle
    from ._extensions import ResilienceOptions

__all__ = ["RequestState", "Settings", "open_state"]

_EMPTY: ResilienceOptions = {}
# Keys of extensions["resilience"] that override no setting: with only these,
# a request takes the transport's settings as they are.
_INERT = frozenset({"service", "auth", "auth_origin"})


class RequestState:
    """The per-request state of the retry loop.

    Attributes:
        request: the ``httpx.Request`` being sent (the same object on every attempt).
        ext: the request's ``extensions["resilience"]`` overrides (empty when none),
            typed as :class:`~httpx_resilience.pipeline._extensions.ResilienceOptions`.
        policy: the :class:`RetryPolicy` in force (the override, else the transport's).
        request_id: the id sent in the request-id header (``None`` when that is off).
        key: the host key per-host policies use (``host`` or ``host:port``).
        idempotent: the request may be retried whatever its method (an
            ``Idempotency-Key`` or the ``idempotent`` override).
        stream_mode: the body is the caller's to read; only the headers are retried.
        start: the clock reading when the request entered the loop.
        attempt_timeout: seconds for one attempt, or ``None``.
        total_timeout: seconds for the whole request, or ``None``.
        deadline: ``start + total_timeout``, or ``None``.
        max_response_bytes: the cap on a buffered response body, or ``None``.
        breaker: this host's breaker, or ``None``.
        limiter: this host's limiter, or ``None``.
        hedging: the hedging policy when it applies to this request, else ``None``.
        tracker: the latency tracker adaptive hedging reads (with ``hedging``).
        attempt: attempts started so far (1 during the first).
        hedges: hedged copies started so far.
        total_wait: seconds slept between attempts and waited for limiter permits.
        previous_delay: the last backoff delay (decorrelated jitter reads it).
        retry_after: the last ``Retry-After`` the server gave, in seconds.
        last_exc: the latest attempt's exception (``None`` after a response).
        cause: the latest failure, described for logs and errors.
        status_code: the latest attempt's status (``None`` after an exception).
        server_delay: the delay the latest response asked for (``Retry-After``).
        fallback: the :class:`~httpx_resilience.Fallback` serving the request
            if it finally fails (the override, else the transport's), or ``None``.
        throttle: the transport's :class:`~httpx_resilience.AdaptiveThrottle`, or ``None``.
    """

    __slots__ = (
        "attempt",
        "attempt_timeout",
        "breaker",
        "cause",
        "deadline",
        "ext",
        "fallback",
        "hedges",
        "hedging",
        "idempotent",
        "key",
        "last_exc",
        "limiter",
        "max_response_bytes",
        "policy",
        "previous_delay",
        "request",
        "request_id",
        "retry_after",
        "server_delay",
        "start",
        "status_code",
        "stream_mode",
        "throttle",
        "total_timeout",
        "total_wait",
        "tracker",
    )

    def __init__(
        self,
        request: httpx.Request,
        ext: ResilienceOptions,
        policy: RetryPolicy,
        request_id: str | None,
        key: str,
        idempotent: bool,
        start: float,
        attempt_timeout: float | None,
        total_timeout: float | None,
        max_response_bytes: int | None,
    ) -> None:
        self.request = request
        self.ext = ext
        self.policy = policy
        self.request_id = request_id
        self.key = key
        self.idempotent = idempotent
        self.stream_mode = bool(ext.get("stream", False)) if ext else False
        self.start = start
        self.attempt_timeout = attempt_timeout
        self.total_timeout = total_timeout
        self.deadline = start + total_timeout if total_timeout is not None else None
        self.max_response_bytes = max_response_bytes
        self.breaker: CircuitBreaker | None = None
        self.limiter: RateLimiter | None = None
        self.hedging: HedgingPolicy | None = None
        self.tracker: LatencyTracker | None = None
        self.attempt = 0
        self.hedges = 0
        self.total_wait = 0.0
        self.previous_delay: float | None = None
        self.retry_after: float | None = None
        self.last_exc: BaseException | None = None
        self.cause = ""
        self.status_code: int | None = None
        self.server_delay: float | None = None
        self.fallback: Fallback | None = None
        self.throttle: AdaptiveThrottle | None = None

    @property
    def service(self) -> str | None:
        """The upstream's name from the ``service`` override, for events."""
        service = self.ext.get("service")
        return str(service) if service is not None else None

    def __repr__(self) -> str:
        return (
            f"RequestState({self.request.method} {self.key}, attempt={self.attempt}/"
            f"{self.policy.max_attempts}, waited={self.total_wait:.3f}s, hedges={self.hedges})"
        )


class _Trackers(Protocol):
    def tracker(self, key: str) -> LatencyTracker: ...


class Settings(Protocol):
    """What :func:`open_state` reads of a ``ResilientTransport`` (its settings)."""

    retry: RetryPolicy
    timeout: float | None
    total_timeout: float | None
    max_response_bytes: int | None
    request_id_header: str | None
    hedging: HedgingPolicy | None
    fallback: Fallback | None
    circuit_breaker: CircuitBreaker | None
    rate_limiter: RateLimiter | None
    throttle: AdaptiveThrottle | None
    _clock: Clock

    @property
    def _hedger(self) -> _Trackers: ...


def open_state(t: Settings, request: httpx.Request, key: str) -> RequestState:
    """Open the request's state for ``t``: overrides, request id, per-host policies; the deadline.

    Both paths (``handle_async_request`` and the sync ``handle_request``) start here.
    """
    ext: ResilienceOptions = request.extensions.get(EXTENSION_KEY) or _EMPTY
    if type(ext) is not dict and ext is not _EMPTY:
        ext = check_ext(ext)
    headers = request.headers
    rid_header = t.request_id_header
    request_id, idempotent = scan_headers(headers, rid_header)
    if rid_header is not None and request_id is None:
        request_id = new_request_id()
        headers[rid_header] = request_id
    if ext is _EMPTY or _INERT.issuperset(ext):  # no overrides: the transport's settings
        s = RequestState(
            request, ext, t.retry, request_id, key, idempotent,
            t._clock.monotonic(), t.timeout, t.total_timeout,
            t.max_response_bytes,
        )
        hedging = t.hedging
        s.fallback = t.fallback
    else:
        s = RequestState(
            request, ext, override(ext, "retry", t.retry), request_id, key,
            override(ext, "idempotent", False) or idempotent, t._clock.monotonic(),
            override(ext, "timeout", t.timeout),
            override(ext, "total_timeout", t.total_timeout),
            override(ext, "max_response_bytes", t.max_response_bytes),
        )
        override(ext, "stream", False)
        hedging = override(ext, "hedging", t.hedging)
        s.fallback = override(ext, "fallback", t.fallback)
    s.throttle = t.throttle
    if t.circuit_breaker is not None:
        s.breaker = t.circuit_breaker.for_key(key)
    if t.rate_limiter is not None:
        s.limiter = t.rate_limiter.for_key(key)
    if (
        hedging is not None
        and (s.idempotent or hedging.applies_to(request.method))
        and is_shareable(request)  # copies racing over one stream would each send part
    ):
        s.hedging = hedging
        s.tracker = t._hedger.tracker(key)
    if "auth_origin" in ext:
        # A redirect may have moved the request to another origin: send no
        # credentials there (httpx itself keeps X-API-KEY and Proxy-Authorization).
        strip_foreign_credentials(request)
    return s
