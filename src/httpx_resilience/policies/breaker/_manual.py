"""A circuit breaker driven by hand, for work that is not an HTTP request.

:class:`ManualControl` is the part of
:class:`~httpx_resilience.policies.breaker.CircuitBreaker` that code calls
itself instead of going through :meth:`~CircuitBreaker.call` or a permit:

* seed 003's API for guarding any operation: :meth:`~ManualControl.can_execute`,
  :meth:`~ManualControl.raise_if_open`, :meth:`~ManualControl.record_success`,
  :meth:`~ManualControl.record_failure`;
* :meth:`~ManualControl.force_open`, :meth:`~ManualControl.force_closed`,
  :meth:`~ManualControl.reset`, :meth:`~ManualControl.add_listener`.

Half-open probes keep their count: :meth:`~ManualControl.raise_if_open` takes
one of the ``half_open_max_calls`` probe slots, as :meth:`~CircuitBreaker.acquire`
does, and the next outcome recorded by hand gives it back.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from ...clock import Clock
from ...exceptions import CircuitBreakerOpenError, ConfigurationError
from ._events import BreakerTransition
from ._machine import PROBE, REFUSED, BreakerMachine, Change, CircuitState

__all__ = ["ManualControl"]

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN


class ManualControl:
    """The breaker's methods for code that reports its own outcomes (a mixin)."""

    __slots__ = ("_manual_probes",)

    name: str
    _machine: BreakerMachine
    _clock: Clock
    _children: MutableMapping[str, Any] | None
    _listeners: list[Callable[[BreakerTransition], None]]
    _manual_probes: tuple[int, int]  # (generation, probe slots taken by raise_if_open)
    _shared: Any  # with a Redis backend: the shared half (``backends._breaker.SharedBreaker``)

    if TYPE_CHECKING:

        @property
        def state(self) -> CircuitState: ...

        def is_failure_exception(self, exc: BaseException) -> bool: ...

        def _record(self, generation: int, probe: bool, failed: bool, duration: float) -> None: ...

        def _emit(self, change: Change, now: float) -> None: ...

    # -- seed 003's API --------------------------------------------------------------

    def can_execute(self) -> bool:
        """Whether a call may be made now; only looks.

        CLOSED: ``True``. OPEN: ``False`` until ``recovery_timeout`` has
        passed; then the breaker moves to HALF_OPEN (the one change this method
        makes, announced like any transition). HALF_OPEN: ``True`` while one
        of the ``half_open_max_calls`` probe slots is free. No slot is taken:
        two tasks that both see ``True`` may both call. To take the slot, call
        :meth:`raise_if_open` (or :meth:`~CircuitBreaker.acquire`).
        """
        state = self.state  # applies a due OPEN → HALF_OPEN
        if state is _CLOSED:
            return True
        return self._machine.can_admit(self._clock.monotonic())

    def raise_if_open(self) -> None:
        """Raise :class:`~httpx_resilience.CircuitBreakerOpenError` unless a call may be made.

        In HALF_OPEN a call that is let through takes one of the
        ``half_open_max_calls`` probe slots (so only that many of any number of
        concurrent callers pass); the next :meth:`record_success` or
        :meth:`record_failure` ends it. A slot whose outcome is never recorded
        is freed after ``recovery_timeout``, like any hung probe.

        Raises:
            CircuitBreakerOpenError: OPEN (``retry_in`` is the cooldown left),
                or HALF_OPEN with every probe slot taken (``retry_in`` is 0).
        """
        m = self._machine
        if m.state is _CLOSED:
            return
        now = self._clock.monotonic()
        with m.lock:
            verdict, change = m.try_admit(now)
            retry_in = m.retry_in(now)
            if verdict is PROBE:
                generation, taken = self._manual_probes
                taken = taken + 1 if generation == m.generation else 1
                self._manual_probes = (m.generation, taken)
        if change is not None:
            self._emit(change, now)
        if verdict is REFUSED:
            raise CircuitBreakerOpenError(self.name, retry_in)

    def record_success(self, *, duration: float = 0.0) -> None:
        """Record a call that succeeded (``duration`` seconds feed the slow-call rule).

        With a Redis backend the outcome also goes to the shared breaker, in the
        background, as an ordinary call (half-open probe slots are taken by
        :meth:`~CircuitBreaker.call` only); :meth:`raise_if_open` and
        :meth:`can_execute` read the last state Redis reported.

        CLOSED: clears the consecutive failures. HALF_OPEN: a successful probe
        (``half_open_max_calls`` of them close the breaker), ending a slot
        :meth:`raise_if_open` took if there is one. OPEN: ignored, as an
        outcome from before the breaker opened.
        """
        self._manual_outcome(False, duration)

    def record_failure(
        self, exc: BaseException | None = None, *, duration: float = 0.0
    ) -> bool:
        """Record a call that failed; with ``exc``, let the breaker classify it first.

        ``exc`` is judged as :meth:`~CircuitBreaker.call` judges an exception
        (:meth:`~CircuitBreaker.is_failure_exception`): one that is not a
        failure (a 404, our own refusals) is recorded as a success; a
        cancellation or other ``BaseException`` records nothing (and gives back
        a probe slot). States as in :meth:`record_success`: CLOSED counts the
        failure (``failure_threshold`` in a row open the breaker), HALF_OPEN
        reopens it, OPEN ignores it.

        Returns:
            whether the call was recorded as a failure.
        """
        if exc is not None and not isinstance(exc, Exception):
            m = self._machine
            with m.lock:
                generation, taken = self._manual_probes
                if taken and generation == m.generation:
                    self._manual_probes = (generation, taken - 1)
                    m.release(generation, True)
            return False
        failed = exc is None or self.is_failure_exception(exc)
        self._manual_outcome(failed, duration)
        return failed

    def _manual_outcome(self, failed: bool, duration: float) -> None:
        if self._shared is not None:  # and to the shared breaker, in the background
            self._shared.report(failed, duration)
        m = self._machine
        now = self._clock.monotonic()
        with m.lock:  # one decision: a due OPEN → HALF_OPEN, then the outcome
            changes = [m.advance(now)]
            if m.state is _CLOSED:
                changes.append(m.record(m.generation, False, failed, duration, now))
            elif m.state is _HALF_OPEN:
                generation, taken = self._manual_probes
                if taken and generation == m.generation:
                    self._manual_probes = (generation, taken - 1)
                    changes.append(m.record(generation, True, failed, duration, now))
                else:  # no slot was taken (can_execute() was the gate): a probe all the same
                    changes.append(m.record_unadmitted(failed, duration, now))
        for change in changes:
            if change is not None:
                self._emit(change, now)

    @property
    def cooldown_seconds(self) -> float:
        """Seed 003's name for :attr:`~CircuitBreaker.recovery_timeout`."""
        return self._machine.settings.recovery_timeout

    # -- forcing a state ---------------------------------------------------------------

    def force_open(self) -> None:
        """Open now; probes are admitted after a fresh ``recovery_timeout``.

        With a Redis backend the shared breaker is forced too, in the
        background (every process sees it on its next call); likewise for
        :meth:`force_closed` and :meth:`reset` (which resets this breaker's
        shared state, not its per-key children's).
        """
        self._force(_OPEN, "forced open")

    def force_closed(self) -> None:
        """Close now and clear the counters; in-flight outcomes from before are ignored."""
        self._force(_CLOSED, "forced closed")

    def reset(self) -> None:
        """Back to a fresh CLOSED breaker: counters cleared, per-key children dropped."""
        self._force(_CLOSED, "reset")
        if self._children is not None:
            with self._machine.lock:
                self._children.clear()

    def _force(self, state: CircuitState, reason: str) -> None:
        now = self._clock.monotonic()
        m = self._machine
        with m.lock:
            change = m.force(state, now, reason)
        if change is not None:
            self._emit(change, now)
        if self._shared is not None:
            self._shared.force(state)

    def add_listener(self, fn: Callable[[BreakerTransition], None]) -> None:
        """Deliver every future transition to ``fn`` (shared with per-key children)."""
        if not callable(fn):
            raise ConfigurationError(
                "a listener must be a callable taking a BreakerTransition", field="listeners"
            )
        self._listeners.append(fn)
