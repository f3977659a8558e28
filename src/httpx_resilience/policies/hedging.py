"""Hedging: when an attempt is slow, race a second one and keep the first answer.

:class:`HedgingPolicy` is the immutable setting; :class:`LatencyTracker` keeps
recent latencies so an ``"adaptive"`` delay can follow the upstream's own
p95 (a hedge then fires only for the slowest ~5 % of requests, which bounds
the extra load). The racing itself lives in the transport. The tracker's
samples change under a ``threading.Lock`` (threads may share it).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Literal

from ..config import as_default, is_default
from ..exceptions import ConfigurationError

__all__ = ["DEFAULT_HEDGE_METHODS", "HedgingPolicy", "LatencyTracker"]

DEFAULT_HEDGE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})
"""Only safe methods are hedged by default: a hedge sends the request twice."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgingPolicy:
    """When and how many extra attempts to race against a slow one.

    ``HedgingPolicy(0.1)`` starts a second attempt when the first has not
    answered after 100 ms; ``HedgingPolicy("adaptive")`` waits for the
    observed ``percentile`` latency instead, clamped to
    ``[min_delay, max_delay]``.

    Args:
        delay: seconds (≥ 0) before each hedge, or ``"adaptive"``. The only
            positional argument.
        max_hedges: extra attempts at most (1..10); hedge ``n`` starts
            ``n * delay`` after the first attempt.
        percentile: the latency percentile an adaptive delay follows, a
            fraction in (0, 1] (``0.95`` = p95).
        min_delay: the adaptive delay's floor in seconds (≥ 0).
        max_delay: the adaptive delay's ceiling in seconds (≥ ``min_delay``).
        methods: the HTTP methods that may be hedged (upper-cased); by default
            GET, HEAD and OPTIONS. Add others only for requests that are safe
            to send twice.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    delay: float | Literal["adaptive"] = field(default="adaptive", kw_only=False)
    max_hedges: int = 1
    percentile: float = 0.95
    min_delay: float = as_default(0.005)
    max_delay: float = as_default(2.0)
    methods: frozenset[str] = DEFAULT_HEDGE_METHODS

    def __post_init__(self) -> None:
        d = self.delay
        if d != "adaptive" and (not _is_number(d) or not 0 <= d < math.inf):
            raise ConfigurationError(
                f"delay must be a finite number of seconds >= 0 or 'adaptive', got {d!r}",
                field="delay",
            )
        mh = self.max_hedges
        if not isinstance(mh, int) or isinstance(mh, bool) or not 1 <= mh <= 10:
            raise ConfigurationError(
                f"max_hedges must be an integer in 1..10, got {mh!r}", field="max_hedges"
            )
        p = self.percentile
        if not _is_number(p) or not 0 < p <= 1:
            raise ConfigurationError(
                f"percentile must be a fraction in (0, 1] (0.95 = p95), got {p!r}",
                field="percentile",
            )
        for name in ("min_delay", "max_delay"):
            v = getattr(self, name)
            if not _is_number(v) or not 0 <= v < math.inf:
                raise ConfigurationError(
                    f"{name} must be a finite number of seconds >= 0, got {v!r}", field=name
                )
        if self.max_delay < self.min_delay:
            # a default yields to the bound that was given; two given bounds must agree
            if is_default(self.max_delay) and not is_default(self.min_delay):
                object.__setattr__(self, "max_delay", as_default(self.min_delay))
            elif is_default(self.min_delay) and not is_default(self.max_delay):
                object.__setattr__(self, "min_delay", as_default(self.max_delay))
        if self.max_delay < self.min_delay or self.max_delay == 0:
            raise ConfigurationError(
                f"max_delay ({self.max_delay!r}) must be > 0 and >= min_delay ({self.min_delay!r})",
                field="max_delay",
            )
        methods = self.methods
        if isinstance(methods, str) or not all(isinstance(m, str) and m for m in methods):
            raise ConfigurationError(
                f"methods must be a collection of HTTP method names, got {methods!r}",
                field="methods",
            )
        object.__setattr__(self, "methods", frozenset(m.upper() for m in methods))

    @property
    def adaptive(self) -> bool:
        """Whether the delay follows observed latencies."""
        return self.delay == "adaptive"

    def applies_to(self, method: str) -> bool:
        """Whether requests with ``method`` may be hedged."""
        return method.upper() in self.methods


class LatencyTracker:
    """A bounded ring of recent successful-attempt latencies.

    Args:
        size: how many recent samples are kept (≥ 20).
        min_samples: samples needed before the adaptive delay trusts the
            percentile (≥ 1); until then :meth:`next_delay` uses ``cold_delay``.
        cold_delay: the adaptive delay before enough samples, clamped to the
            policy's ``[min_delay, max_delay]``.
        refresh_every: the cached percentile behind :meth:`next_delay` is
            recomputed after this many new samples (sorting on every request
            would cost more than the hedge saves).

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """

    __slots__ = (
        "_cached",
        "_cached_p",
        "_cold_delay",
        "_count",
        "_idx",
        "_lock",
        "_min_samples",
        "_refresh_every",
        "_ring",
        "_since",
    )

    def __init__(
        self,
        size: int = 512,
        *,
        min_samples: int = 20,
        cold_delay: float = 1.0,
        refresh_every: int = 16,
    ) -> None:
        for name, value, low in (
            ("size", size, 20),
            ("min_samples", min_samples, 1),
            ("refresh_every", refresh_every, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigurationError(
                    f"{name} must be an integer >= {low}, got {value!r}", field=name
                )
        if min_samples > size:
            raise ConfigurationError(
                f"min_samples ({min_samples}) must be <= size ({size})", field="min_samples"
            )
        if not _is_number(cold_delay) or not 0 <= cold_delay < math.inf:
            raise ConfigurationError(
                f"cold_delay must be a finite number of seconds >= 0, got {cold_delay!r}",
                field="cold_delay",
            )
        self._ring = [0.0] * size
        self._idx = 0
        self._count = 0
        self._min_samples = min_samples
        self._cold_delay = float(cold_delay)
        self._refresh_every = refresh_every
        self._since = 0  # samples since the cached percentile was computed
        self._cached: float | None = None
        self._cached_p = -1.0
        self._lock = threading.Lock()  # threads may share the tracker

    def __len__(self) -> int:
        return self._count

    def observe(self, seconds: float) -> None:
        """Record one successful attempt's latency (negative or non-finite values are ignored)."""
        if not 0 <= seconds < math.inf:
            return
        with self._lock:
            self._ring[self._idx] = seconds
            self._idx = (self._idx + 1) % len(self._ring)
            if self._count < len(self._ring):
                self._count += 1
            self._since += 1

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (nearest rank, ``p`` in (0, 1]) of the samples, or ``None``.

        Raises:
            ConfigurationError: ``p`` is outside (0, 1].
        """
        if not _is_number(p) or not 0 < p <= 1:
            raise ConfigurationError(f"p must be a fraction in (0, 1], got {p!r}", field="p")
        with self._lock:  # a snapshot; sorted outside the lock
            n = self._count
            samples = self._ring[:n]
        if n == 0:
            return None
        samples.sort()
        return samples[max(0, math.ceil(p * n) - 1)]

    def next_delay(self, policy: HedgingPolicy) -> float:
        """Seconds to wait before the next hedge under ``policy``.

        A fixed delay is returned as is. An adaptive one is the observed
        ``policy.percentile`` latency clamped to ``[min_delay, max_delay]``,
        or ``cold_delay`` (clamped the same way) until ``min_samples``
        latencies were seen.
        """
        if policy.delay != "adaptive":
            return float(policy.delay)
        if self._count < self._min_samples:
            value = self._cold_delay
        else:
            p = policy.percentile
            cached = self._cached
            if cached is None or self._cached_p != p or self._since >= self._refresh_every:
                cached = self.percentile(p)
                with self._lock:
                    self._cached, self._cached_p, self._since = cached, p, 0
            value = self._cold_delay if cached is None else cached  # reset() meanwhile
        return min(policy.max_delay, max(policy.min_delay, value))

    def reset(self) -> None:
        """Forget every sample."""
        with self._lock:
            self._idx = self._count = self._since = 0
            self._cached = None

    def __repr__(self) -> str:
        p95 = self.percentile(0.95)
        shown = "n/a" if p95 is None else f"{p95 * 1000:.1f}ms"
        return f"LatencyTracker(samples={self._count}/{len(self._ring)}, p95={shown})"
