"""``AdaptiveThrottle``: client-side throttling, as in the Google SRE book ("Handling Overload").

Per host, over a sliding window, the throttle counts

* **requests**: attempts the pipeline wanted to send (the ones the throttle
  itself refused included), and
* **accepts**: attempts the upstream accepted,

and refuses a new attempt *locally, before anything is sent*, with probability

    p = max(0, (requests − k · accepts) / (requests + 1))

capped at ``max_probability``. While the upstream accepts everything, ``p``
is 0; once it rejects more than ``1 − 1/k`` of the attempts (half, with
``k=2``), the client sheds the excess itself, so a client facing a hard
outage stops sending most first attempts too, not only the retries the
retry budget stops. As the window slides the rejections age out and the
few attempts still let through find the upstream back: ``p`` falls to 0 by
itself (within about a window with the default cap; without a cap,
``max_probability=1.0``, the exact formula of the book, it can take several).

**Accepted** means what the book means: the upstream took the request and
answered it. A response is accepted unless its status is in
``reject_statuses`` (429 and every 5xx by default: the upstream refused or
failed it); a connect error, a timeout (the attempt's or the total
deadline's), a reset or any other failure of the transport is a rejection.
An attempt that was not sent for another local reason (an open breaker, the
limiter's timeout) is not counted at all, and neither is a cancelled one:
the throttle measures the upstream, not the client.

Counts live in ``buckets`` time slices per host (a host not seen for a while
is dropped, bounded by ``max_keys``); an attempt is counted when it ends (the
throttle's own refusals at once). The counts change under a ``threading.Lock``,
so threads and event loops may share one throttle. Time and chance are injected (``clock=``,
``rng=``), so tests and benches replay a run exactly.

A refusal raises :class:`ThrottledError` (an ``httpx.TransportError``, like
``CircuitBreakerOpenError``): it is not retried, and a ``fallback=`` serves it.
Observers receive :class:`ThrottleRejected`.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..config import check_number
from ..exceptions import (
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    RateLimiterTimeout,
    RequestNotReplayableError,
    _HttpxCompatible,
)
from ..observe.events import ThrottleRejected

__all__ = [
    "DEFAULT_REJECT_STATUSES",
    "AdaptiveThrottle",
    "ThrottleRejected",
    "ThrottledError",
]

#: Statuses that count as the upstream's rejection: 429 and every 5xx.
DEFAULT_REJECT_STATUSES: frozenset[int] = frozenset({429, *range(500, 600)})

# Refusals of the client itself: the attempt was not sent, nothing to learn.
_NOT_SENT: tuple[type[BaseException], ...] = (
    CircuitBreakerOpenError,
    RateLimiterTimeout,
    BulkheadFullError,
    RequestNotReplayableError,
)


class ThrottledError(_HttpxCompatible, httpx.TransportError):
    """The adaptive throttle refused an attempt locally; nothing was sent.

    Attributes:
        host: the host key whose counts refused it.
        probability: the rejection probability at that moment.
        requests: requests counted over the window.
        accepts: accepts counted over the window.
        attempt: the attempt refused (1: the first; more: a retry).
    """

    def __init__(
        self, host: str, probability: float, requests: int, accepts: int, *,
        attempt: int = 1, window: float = 0.0, request: httpx.Request | None = None,
        **kw: Any,
    ) -> None:
        self.host = host
        self.probability = probability
        self.requests = requests
        self.accepts = accepts
        self.attempt = attempt
        kw.setdefault(
            "hint",
            "The upstream is rejecting most requests; the throttle lets traffic back as "
            "it recovers. Serve a fallback= meanwhile, or raise AdaptiveThrottle(k=...)",
        )
        what = "attempt" if attempt == 1 else f"retry (attempt {attempt})"
        super().__init__(
            f"Adaptive throttle refused the {what} locally for {host}: the upstream "
            f"accepted {accepts} of the last {requests} requests over {window:g} s "
            f"(rejection probability {probability:.0%}); nothing was sent",
            request=request,
            **kw,
        )


class _Counts:
    """One host's window: requests and accepts per time slice and their running totals."""

    __slots__ = ("accepts", "epoch", "requests", "total_accepts", "total_requests")

    def __init__(self, n: int, epoch: int) -> None:
        self.requests = [0] * n
        self.accepts = [0] * n
        self.total_requests = 0
        self.total_accepts = 0
        self.epoch = epoch

    def roll(self, epoch: int) -> None:
        n = len(self.requests)
        gap = epoch - self.epoch
        if gap <= 0:
            return
        for e in range(self.epoch + 1, self.epoch + 1 + min(gap, n)):
            i = e % n
            self.requests[i] = 0
            self.accepts[i] = 0
        self.epoch = epoch
        self.total_requests = sum(self.requests)
        self.total_accepts = sum(self.accepts)


class AdaptiveThrottle:
    """Client-side adaptive throttling per host (Google SRE book, "Handling Overload").

    Args:
        k: the multiplier of accepts: the upstream may reject up to ``1 − 1/k``
            of the attempts before the client sheds any (``2.0``: half; lower
            is more aggressive). At least 1.
        window: seconds of history the counts cover.
        buckets: time slices of the window (the counts age out slice by slice).
        min_requests: no attempt is refused while fewer requests than this
            were counted over the window, so a quiet client is not throttled
            on its first failures (``0``: the exact formula).
        max_probability: the cap on the rejection probability (``1.0``: no
            cap). Below 1, some attempts always go through, so the throttle
            sees the upstream come back within about a window.
        reject_statuses: response statuses that count as rejections (429
            and every 5xx by default); any other status is an accept.
        max_keys: hosts tracked at most; the least recently used is dropped.
        clock: the time source (a ``FakeClock`` in tests).
        rng: the random source of the refusals (``random.Random(seed)`` to
            replay a run).

    Raises:
        ConfigurationError: a value out of range, naming it.
    """

    __slots__ = (
        "_clock", "_counts", "_last", "_lock", "_max_keys", "_n", "_rng", "_width", "buckets",
        "k", "max_probability", "min_requests", "reject_statuses", "window",
    )

    def __init__(
        self,
        k: float = 2.0,
        window: float = 120.0,
        *,
        buckets: int = 60,
        min_requests: int = 20,
        max_probability: float = 0.9,
        reject_statuses: Collection[int] = DEFAULT_REJECT_STATUSES,
        max_keys: int = 1024,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        check_number("k", k, minimum=1)
        check_number("window", window, minimum=0.001)
        check_number("buckets", buckets, minimum=1, maximum=10_000, integer=True)
        check_number("min_requests", min_requests, minimum=0, integer=True)
        check_number("max_probability", max_probability, minimum=0, maximum=1)
        check_number("max_keys", max_keys, minimum=1, integer=True)
        if isinstance(reject_statuses, (str, bytes)) or any(
            type(s) is not int or not 100 <= s <= 599 for s in reject_statuses
        ):
            raise ConfigurationError(
                f"reject_statuses must be HTTP statuses (100..599), got {reject_statuses!r:.80}",
                field="reject_statuses",
            )
        if rng is not None and not callable(getattr(rng, "random", None)):
            raise ConfigurationError(
                f"rng must be a random.Random, got {type(rng).__name__}", field="rng"
            )
        self.k = float(k)
        self.window = float(window)
        self.buckets = buckets
        self.min_requests = min_requests
        self.max_probability = float(max_probability)
        self.reject_statuses = frozenset(reject_statuses)
        self._n = buckets
        self._width = self.window / buckets
        self._max_keys = max_keys
        self._clock = clock or SYSTEM_CLOCK
        self._rng = rng or random.Random()
        self._counts: OrderedDict[str, _Counts] = OrderedDict()
        self._last: tuple[str, _Counts] | None = None  # the previous call's host
        self._lock = threading.Lock()

    def _window(self, key: str) -> _Counts:
        epoch = int(self._clock.monotonic() / self._width)
        last = self._last
        if last is not None and last[0] == key:
            c = last[1]
        else:
            found = self._counts.get(key)
            if found is None:
                c = self._counts[key] = _Counts(self._n, epoch)
                if len(self._counts) > self._max_keys:
                    self._counts.popitem(last=False)
            else:
                c = found
                self._counts.move_to_end(key)
            self._last = (key, c)
        if epoch != c.epoch:
            c.roll(epoch)
        return c

    def _p(self, c: _Counts) -> float:
        requests = c.total_requests
        if requests < self.min_requests or requests == 0:
            return 0.0
        p = (requests - self.k * c.total_accepts) / (requests + 1)
        return 0.0 if p <= 0.0 else min(p, self.max_probability)

    def probability(self, key: str = "") -> float:
        """The rejection probability for ``key`` now (the formula of the module docstring)."""
        with self._lock:
            return self._p(self._window(key))

    def counts(self, key: str = "") -> tuple[int, int]:
        """``(requests, accepts)`` counted for ``key`` over the window now."""
        with self._lock:
            c = self._window(key)
            return c.total_requests, c.total_accepts

    def admit(self, key: str = "") -> float:
        """Decide on one attempt: ``0.0`` to send it, else the probability that refused it.

        A refusal is counted as a request (not accepted) at once; an admitted
        attempt is counted when it ends (:meth:`record`, :meth:`record_error`).
        """
        lock = self._lock
        lock.acquire()  # not `with`, which costs twice as much: this runs once per attempt
        try:
            c = self._window(key)
            p = self._p(c)
            if p == 0.0 or self._rng.random() >= p:
                return 0.0
            c.requests[c.epoch % self._n] += 1
            c.total_requests += 1
            return p
        finally:
            lock.release()

    def record(self, key: str, accepted: bool) -> None:
        """Count one attempt that was sent: accepted by the upstream, or rejected."""
        lock = self._lock
        lock.acquire()
        try:
            c = self._window(key)
            i = c.epoch % self._n
            c.requests[i] += 1
            c.total_requests += 1
            if accepted:
                c.accepts[i] += 1
                c.total_accepts += 1
        finally:
            lock.release()

    def record_status(self, key: str, status_code: int) -> None:
        """Count an attempt that got a response: accepted unless its status is a rejection."""
        self.record(key, status_code not in self.reject_statuses)

    def record_error(self, key: str, error: BaseException) -> None:
        """Count an attempt that raised: a failure of the transport is a rejection.

        A refusal of the client itself (open breaker, limiter, bulkhead, a
        body that cannot be replayed) was not sent and is not counted; an
        error after the upstream answered (a body over its size cap) is an accept.
        """
        if isinstance(error, (*_NOT_SENT, ThrottledError)):
            return
        self.record(key, not isinstance(error, httpx.TransportError))

    def __repr__(self) -> str:
        return (
            f"AdaptiveThrottle(k={self.k:g}, window={self.window:g}, buckets={self.buckets}, "
            f"min_requests={self.min_requests}, max_probability={self.max_probability:g}, "
            f"hosts={len(self._counts)})"
        )
