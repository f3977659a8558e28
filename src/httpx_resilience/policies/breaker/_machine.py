"""The circuit breaker's state machine: pure decisions, no I/O, no clock.

:class:`BreakerMachine` holds the breaker's counters and decides every
transition from ``(settings, state, event, now)``; the caller passes ``now``
in, so the whole machine is unit-testable without an event loop or a clock.
:class:`~httpx_resilience.policies.breaker.CircuitBreaker` is the thin edge
that reads the clock, raises, logs and notifies listeners. Also here: the
states (:class:`CircuitState`), the verdicts of :meth:`BreakerMachine.try_admit`
and the :class:`Change` a transition returns. The settings it obeys are in
:mod:`._settings`, its sliding windows in :mod:`._windows`.

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

The machine carries the ``threading.Lock`` its edge holds around every
decision that changes it (:attr:`BreakerMachine.lock`): the lock travels with
the state, so breakers sharing one machine (a ``MemoryBackend``) share it.
The machine itself never takes it.
"""

from __future__ import annotations

import copy
import enum
import math
import threading
from typing import Any, NamedTuple

from ._settings import BreakerSettings
from ._windows import CountWindow, TimeWindow

__all__ = [
    "ADMITTED",
    "PROBE",
    "REFUSED",
    "BreakerMachine",
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
        windowed: whether a sliding window (a rate rule) is kept.
        slow_after: the slow-call duration (infinity when the rule is off).
        lock: held by the edge around every change (threads share a breaker).
    """

    __slots__ = (
        "__weakref__",  # shared by name through a MemoryBackend's registry
        "_window",
        "consecutive_failures",
        "generation",
        "half_open_since",
        "last_probe_at",
        "lock",
        "needs_time",
        "open_until",
        "probe_successes",
        "probes_in_flight",
        "settings",
        "slow_after",
        "state",
        "windowed",
    )

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.state = _CLOSED
        self.generation = 0
        self.half_open_since = 0  # the generation HALF_OPEN began with
        self.consecutive_failures = 0
        self.open_until = 0.0
        self.probes_in_flight = 0
        self.probe_successes = 0
        self.last_probe_at = 0.0
        self.slow_after = (
            settings.slow_call_duration if settings.slow_call_duration is not None else math.inf
        )
        self._window: CountWindow | TimeWindow | None = None
        if settings.uses_window:
            if settings.window_type == "count":
                self._window = CountWindow(int(settings.window_size))
            else:
                self._window = TimeWindow(float(settings.window_size))
        self.needs_time = isinstance(self._window, TimeWindow)
        self.windowed = self._window is not None
        self.lock = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any]) -> BreakerMachine:
        """A copy of the state with a lock of its own (a lock cannot be copied)."""
        twin = object.__new__(BreakerMachine)
        for name in self.__slots__:
            if name != "__weakref__":
                value = getattr(self, name)
                fresh = threading.Lock() if name == "lock" else copy.deepcopy(value, memo)
                setattr(twin, name, fresh)
        return twin

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

    def _probe_slot_free(self, now: float) -> tuple[bool, bool]:
        """In HALF_OPEN: ``(a probe may start now, the hung probes' round must end first)``.

        Even the newest probe having been out for a whole ``recovery_timeout``
        means the probes hang or a permit was never ended: a new probe round
        starts rather than refusing forever.
        """
        s = self.settings
        taken = self.probes_in_flight + self.probe_successes
        stale = taken >= s.half_open_max_calls and bool(
            self.probes_in_flight and now - self.last_probe_at >= s.recovery_timeout
        )
        return stale or taken < s.half_open_max_calls, stale

    def can_admit(self, now: float) -> bool:
        """Whether :meth:`try_admit` would admit a call at ``now``; changes nothing.

        (An OPEN machine whose timeout has passed answers as HALF_OPEN would;
        the edge applies the transition with :meth:`advance` first.)
        """
        if self.state is _CLOSED:
            return True
        if self.state is _OPEN and now < self.open_until:
            return False
        if self.state is _OPEN:  # due: HALF_OPEN with every slot free
            return True
        return self._probe_slot_free(now)[0]

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
            free, stale = self._probe_slot_free(now)
            if stale:
                # A new probe round: a new generation, so the hung probes' late
                # successes do not count towards closing (a late failure still
                # reopens: see record()).
                self.generation += 1
                self.probes_in_flight = 0
                self.probe_successes = 0
            if free:
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
            if (
                probe
                and failed
                and self.state is _HALF_OPEN
                and generation >= self.half_open_since
            ):
                # A probe of an earlier round of this half-open period, given up on
                # as hung, failed after all: the upstream is not back.
                return self._to_open(now, "half-open probe failed")
            return None  # stale: from before the last transition
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

    def record_unadmitted(self, failed: bool, duration: float, now: float) -> Change | None:
        """Record, in HALF_OPEN, the outcome of a call no probe slot was taken for
        (the breaker's manual API): it counts as a probe that started and ended now."""
        if self.state is not _HALF_OPEN:
            return None
        self.probes_in_flight += 1
        return self.record(self.generation, True, failed, duration, now)

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

    def mirror(
        self, state: CircuitState, retry_in: float, now: float, reason: str
    ) -> Change | None:
        """Adopt ``state``, decided elsewhere (a shared backend), as the last known state.

        OPEN keeps ``retry_in`` seconds of its cooldown (the shared breaker's,
        not a fresh ``recovery_timeout``); a move to another state starts a new
        generation, as any transition does.
        """
        if state is _OPEN:
            change = self._to_open(now, reason) if self.state is not _OPEN else None
            self.open_until = now + retry_in
            return change
        if state is self.state:
            return None
        if state is _HALF_OPEN:
            old = self._new_generation(_HALF_OPEN)
            self.half_open_since = self.generation
            return Change(old, _HALF_OPEN, reason)
        return self._to_closed(reason)

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
        self.half_open_since = self.generation
        reason = f"recovery timeout of {self.settings.recovery_timeout:g} s passed"
        return Change(old, _HALF_OPEN, reason)

    def _to_closed(self, reason: str) -> Change | None:
        old = self._new_generation(_CLOSED)
        self.consecutive_failures = 0
        self.open_until = 0.0
        if self._window is not None:
            self._window.clear()
        return Change(old, _CLOSED, reason) if old is not _CLOSED else None
