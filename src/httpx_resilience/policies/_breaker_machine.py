"""The circuit breaker's state machine: pure decisions, no I/O, no clock.

:class:`BreakerMachine` holds the breaker's counters and decides every
transition from ``(settings, state, event, now)``; the caller passes ``now``
in, so the whole machine is unit-testable without an event loop or a clock.
:class:`~httpx_resilience.policies.breaker.CircuitBreaker` is the thin edge
that reads the clock, raises, logs and notifies listeners.

The rules:

* CLOSED → OPEN when ``failure_threshold`` consecutive calls failed, or, with a
  sliding window, when at least ``minimum_calls`` calls in the window had a
  failure rate ≥ ``failure_rate_threshold`` or a slow-call rate ≥
  ``slow_call_rate_threshold``.
* OPEN → HALF_OPEN once ``recovery_timeout`` seconds have passed.
* HALF_OPEN admits ``half_open_max_calls`` concurrent probes; the first probe
  that fails (or is slow) reopens with a fresh ``recovery_timeout``;
  ``half_open_max_calls`` successful probes close the breaker.

Every transition bumps :attr:`BreakerMachine.generation`; an outcome reported
for an older generation (a call that started before the breaker opened, say) is
ignored, so a late success can never close a breaker it did not probe.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ..exceptions import ConfigurationError

__all__ = [
    "ADMITTED",
    "PROBE",
    "REFUSED",
    "BreakerMachine",
    "BreakerSettings",
    "Change",
    "CircuitState",
]


class CircuitState(str, enum.Enum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    """Calls flow; outcomes are counted."""
    OPEN = "open"
    """Calls are refused until ``recovery_timeout`` has passed."""
    HALF_OPEN = "half_open"
    """A few probe calls are let through to test the upstream."""


_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN

REFUSED = 0
"""``try_admit`` result: the call must not be made."""
ADMITTED = 1
"""``try_admit`` result: an ordinary call (breaker closed)."""
PROBE = 2
"""``try_admit`` result: a half-open probe; its outcome decides the state."""


class Change(NamedTuple):
    """A state transition decided by the machine (the edge adds the name and time)."""

    old: CircuitState
    new: CircuitState
    reason: str


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_rate(value: float | None, field: str) -> None:
    if value is None:
        return
    if not _is_number(value) or not 0.0 < value <= 1.0:
        raise ConfigurationError(
            f"{field} must be a fraction in (0, 1] (0.5 means 50 %), got {value!r}", field=field
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSettings:
    """The validated, immutable settings of a circuit breaker.

    See :class:`~httpx_resilience.policies.breaker.CircuitBreaker` for the
    meaning of each field.

    Raises:
        ConfigurationError: a value is out of range; the message names the
            field and the allowed range.
    """

    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    half_open_max_calls: int = 1
    failure_rate_threshold: float | None = None
    window_type: Literal["count", "time"] = "count"
    window_size: float = 100
    minimum_calls: int = 10
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float | None = None

    def __post_init__(self) -> None:
        for field in ("failure_threshold", "half_open_max_calls", "minimum_calls"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(
                    f"{field} must be an integer >= 1, got {value!r}", field=field
                )
        rt = self.recovery_timeout
        if not _is_number(rt) or not 0.0 < rt < math.inf:
            raise ConfigurationError(
                f"recovery_timeout must be a finite number of seconds > 0, got {rt!r}",
                field="recovery_timeout",
            )
        _check_rate(self.failure_rate_threshold, "failure_rate_threshold")
        _check_rate(self.slow_call_rate_threshold, "slow_call_rate_threshold")
        if self.window_type not in ("count", "time"):
            raise ConfigurationError(
                f"window_type must be 'count' or 'time', got {self.window_type!r}",
                field="window_type",
            )
        ws = self.window_size
        if not _is_number(ws) or not 0.0 < ws < math.inf:
            raise ConfigurationError(
                f"window_size must be a finite number > 0 (calls or seconds), got {ws!r}",
                field="window_size",
            )
        if self.window_type == "count":
            if ws != int(ws):
                raise ConfigurationError(
                    f"window_size must be a whole number of calls for window_type='count', "
                    f"got {ws!r}",
                    field="window_size",
                )
            if self.uses_window and self.minimum_calls > ws:
                raise ConfigurationError(
                    f"minimum_calls ({self.minimum_calls}) must be <= window_size ({ws:g}) "
                    "for a count window, otherwise the rate rules can never trip",
                    field="minimum_calls",
                )
        scd = self.slow_call_duration
        if scd is not None and (not _is_number(scd) or not 0.0 < scd < math.inf):
            raise ConfigurationError(
                f"slow_call_duration must be a finite number of seconds > 0, got {scd!r}",
                field="slow_call_duration",
            )
        if (scd is None) != (self.slow_call_rate_threshold is None):
            field = "slow_call_rate_threshold" if scd is not None else "slow_call_duration"
            raise ConfigurationError(
                "slow_call_duration and slow_call_rate_threshold go together: set both "
                "(e.g. 2.0 and 0.5) or neither",
                field=field,
            )

    @property
    def uses_window(self) -> bool:
        """Whether a rate rule (failures or slow calls) needs the sliding window."""
        return self.failure_rate_threshold is not None or self.slow_call_rate_threshold is not None


class _CountWindow:
    """The outcomes of the last ``size`` calls, in a ring; O(1) per call, no allocation."""

    __slots__ = ("_idx", "_ring", "failures", "slow", "total")

    def __init__(self, size: int) -> None:
        # Each slot holds a bit set: 1 = failed, 2 = slow, 4 = occupied.
        self._ring = [0] * size
        self._idx = 0
        self.total = 0
        self.failures = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        old = self._ring[self._idx]
        if old:
            self.total -= 1
            self.failures -= old & 1
            self.slow -= (old >> 1) & 1
        self._ring[self._idx] = 4 | failed | (slow << 1)
        self._idx = (self._idx + 1) % len(self._ring)
        self.total += 1
        self.failures += failed
        self.slow += slow

    def roll(self, now: float) -> None:
        """Count windows do not age; present for symmetry with :class:`_TimeWindow`."""

    def clear(self) -> None:
        self._ring = [0] * len(self._ring)
        self._idx = 0
        self.total = self.failures = self.slow = 0


class _TimeWindow:
    """The outcomes of the last ``seconds``, aggregated in buckets.

    Buckets are ``seconds / n`` wide (n between 10 and 120, about one per
    second), so a call is forgotten between ``seconds - width`` and
    ``seconds`` after it ended: the usual trade of precision for O(1) memory.
    """

    __slots__ = ("_fail", "_head", "_n", "_slow", "_tot", "_width", "failures", "slow", "total")

    def __init__(self, seconds: float) -> None:
        self._n = min(max(math.ceil(seconds), 10), 120)
        self._width = seconds / self._n
        self._tot = [0] * self._n
        self._fail = [0] * self._n
        self._slow = [0] * self._n
        # Far in the past: the first roll clears every bucket.
        self._head = -(1 << 62)
        self.total = self.failures = self.slow = 0

    def roll(self, now: float) -> None:
        """Forget the buckets that fell out of the window by ``now``."""
        epoch = math.floor(now / self._width)
        if epoch <= self._head:
            return
        if epoch - self._head >= self._n:
            self.clear()
        else:
            for e in range(self._head + 1, epoch + 1):
                i = e % self._n
                self.total -= self._tot[i]
                self.failures -= self._fail[i]
                self.slow -= self._slow[i]
                self._tot[i] = self._fail[i] = self._slow[i] = 0
        self._head = epoch

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self.roll(now)
        i = self._head % self._n
        self._tot[i] += 1
        self._fail[i] += failed
        self._slow[i] += slow
        self.total += 1
        self.failures += failed
        self.slow += slow

    def clear(self) -> None:
        self._tot = [0] * self._n
        self._fail = [0] * self._n
        self._slow = [0] * self._n
        self.total = self.failures = self.slow = 0


class BreakerMachine:
    """The mutable state of one breaker and the pure rules that move it.

    No method reads a clock or does I/O: time comes in as ``now``, decisions
    come out as return values (a :class:`Change` when the state moved).

    Attributes:
        settings: the validated settings.
        state: the current state (as of the last call; see :meth:`advance`).
        generation: bumped on every transition; permits carry it.
        consecutive_failures: failures since the last success (CLOSED only).
        open_until: when an OPEN breaker lets the first probe through.
        probes_in_flight: admitted half-open probes without an outcome yet.
        probe_successes: successful probes in this half-open period.
        last_probe_at: when the most recent half-open probe was admitted.
        needs_time: whether recording a CLOSED outcome needs ``now`` (a time window).
        slow_after: the slow-call duration (infinity when the rule is off).
    """

    __slots__ = (
        "_window",
        "consecutive_failures",
        "generation",
        "last_probe_at",
        "needs_time",
        "open_until",
        "probe_successes",
        "probes_in_flight",
        "settings",
        "slow_after",
        "state",
    )

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.state = _CLOSED
        self.generation = 0
        self.consecutive_failures = 0
        self.open_until = 0.0
        self.probes_in_flight = 0
        self.probe_successes = 0
        self.last_probe_at = 0.0
        self.slow_after = (
            settings.slow_call_duration if settings.slow_call_duration is not None else math.inf
        )
        self._window: _CountWindow | _TimeWindow | None = None
        if settings.uses_window:
            if settings.window_type == "count":
                self._window = _CountWindow(int(settings.window_size))
            else:
                self._window = _TimeWindow(float(settings.window_size))
        self.needs_time = isinstance(self._window, _TimeWindow)

    def window_counts(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow calls)`` in the sliding window as of ``now``."""
        w = self._window
        if w is None:
            return (0, 0, 0)
        w.roll(now)
        return (w.total, w.failures, w.slow)

    # -- decisions -----------------------------------------------------------------

    def advance(self, now: float) -> Change | None:
        """Apply the passage of time: OPEN → HALF_OPEN once ``open_until`` is reached."""
        if self.state is _OPEN and now >= self.open_until:
            return self._to_half_open(now)
        return None

    def try_admit(self, now: float) -> tuple[int, Change | None]:
        """Decide whether a call may start at ``now``.

        Returns:
            ``(REFUSED | ADMITTED | PROBE, change)`` where ``change`` is the
            OPEN → HALF_OPEN transition that admitting caused, if any.
        """
        if self.state is _CLOSED:
            return ADMITTED, None
        change = self.advance(now)
        if self.state is _HALF_OPEN:
            s = self.settings
            if self.probes_in_flight + self.probe_successes >= s.half_open_max_calls and (
                self.probes_in_flight and now - self.last_probe_at >= s.recovery_timeout
            ):
                # Even the newest probe has been out for a whole
                # recovery_timeout: the probes hang or a permit was never
                # ended. Start a new probe round (a new generation, so their
                # late outcomes are ignored) rather than refusing forever.
                self.generation += 1
                self.probes_in_flight = 0
                self.probe_successes = 0
            if self.probes_in_flight + self.probe_successes < s.half_open_max_calls:
                self.probes_in_flight += 1
                self.last_probe_at = now
                return PROBE, change
        return REFUSED, change

    def record(
        self, generation: int, probe: bool, failed: bool, duration: float, now: float
    ) -> Change | None:
        """Record the outcome of a call admitted in ``generation``.

        Args:
            generation: the generation the call was admitted in; stale outcomes are ignored.
            probe: whether the call was a half-open probe.
            failed: whether the call failed (the edge classified it).
            duration: how long the call took, for the slow-call rule.
            now: the current time (needed by time windows and when opening).
        """
        if generation != self.generation:
            return None
        slow = duration >= self.slow_after
        if probe:
            self.probes_in_flight -= 1
            if failed or slow:
                return self._to_open(now, "half-open probe " + ("failed" if failed else "was slow"))
            self.probe_successes += 1
            if self.probe_successes >= self.settings.half_open_max_calls:
                n = self.probe_successes
                return self._to_closed(_plural(n, "half-open probe") + " succeeded")
            return None
        if self.state is not _CLOSED:  # pragma: no cover - generations make this unreachable
            return None
        if failed:
            self.consecutive_failures += 1
        else:
            self.consecutive_failures = 0
        w = self._window
        if w is None:
            if failed and self.consecutive_failures >= self.settings.failure_threshold:
                return self._to_open(now, _plural(self.consecutive_failures, "consecutive failure"))
            return None
        w.record(failed, slow, now)
        return self._check_trip(failed, slow, now)

    def _check_trip(self, failed: bool, slow: bool, now: float) -> Change | None:
        s = self.settings
        if failed and self.consecutive_failures >= s.failure_threshold:
            return self._to_open(now, _plural(self.consecutive_failures, "consecutive failure"))
        w = self._window
        assert w is not None
        if w.total < s.minimum_calls:
            return None
        frt = s.failure_rate_threshold
        if failed and frt is not None and w.failures >= frt * w.total:
            return self._to_open(
                now,
                f"failure rate {w.failures / w.total:.0%} >= {frt:.0%} "
                f"({w.failures}/{w.total} calls)",
            )
        srt = s.slow_call_rate_threshold
        if slow and srt is not None and w.slow >= srt * w.total:
            return self._to_open(
                now,
                f"slow-call rate {w.slow / w.total:.0%} >= {srt:.0%} "
                f"({w.slow}/{w.total} calls took >= {s.slow_call_duration:g} s)",
            )
        return None

    def release(self, generation: int, probe: bool) -> None:
        """A call ended without an outcome (cancelled, a hedge loser): free its probe slot."""
        if probe and generation == self.generation and self.probes_in_flight > 0:
            self.probes_in_flight -= 1

    def force(self, state: CircuitState, now: float, reason: str) -> Change | None:
        """Move to OPEN or CLOSED by hand (``force_open``/``force_closed``/``reset``).

        Counters are always cleared and the generation bumped, so in-flight
        calls from before are ignored; a :class:`Change` is returned only when
        the state actually changed.
        """
        if state is _OPEN:
            return self._to_open(now, reason)
        return self._to_closed(reason)

    def retry_in(self, now: float) -> float:
        """Seconds until an OPEN breaker admits a probe; 0 in any other state."""
        if self.state is _OPEN:
            return max(0.0, self.open_until - now)
        return 0.0

    # -- transitions ------------------------------------------------------------------

    def _new_generation(self, new: CircuitState) -> CircuitState:
        old = self.state
        self.state = new
        self.generation += 1
        self.probes_in_flight = 0
        self.probe_successes = 0
        return old

    def _to_open(self, now: float, reason: str) -> Change | None:
        old = self._new_generation(_OPEN)
        self.open_until = now + self.settings.recovery_timeout
        self.consecutive_failures = 0
        return Change(old, _OPEN, reason) if old is not _OPEN else None

    def _to_half_open(self, now: float) -> Change | None:
        old = self._new_generation(_HALF_OPEN)
        reason = f"recovery timeout of {self.settings.recovery_timeout:g} s passed"
        return Change(old, _HALF_OPEN, reason)

    def _to_closed(self, reason: str) -> Change | None:
        old = self._new_generation(_CLOSED)
        self.consecutive_failures = 0
        self.open_until = 0.0
        if self._window is not None:
            self._window.clear()
        return Change(old, _CLOSED, reason) if old is not _CLOSED else None
