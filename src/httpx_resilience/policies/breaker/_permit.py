"""The right to make one call through a circuit breaker.

:meth:`CircuitBreaker.acquire <httpx_resilience.policies.breaker.CircuitBreaker.acquire>`
hands out a :class:`BreakerPermit`; the caller ends it with the call's
outcome, which the permit reports back to its breaker (stamped with the
breaker's generation, so an outcome from before a transition is ignored).

The permit knows its breaker only as a :class:`PermitIssuer`, the three
members it uses, and does not import the module that defines the breaker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._machine import BreakerMachine

__all__ = ["BreakerPermit", "PermitIssuer"]


class PermitIssuer(Protocol):
    """What a permit reports to (a :class:`~httpx_resilience.CircuitBreaker` is one)."""

    @property
    def name(self) -> str:
        """The breaker's name, for the permit's repr."""

    @property
    def _machine(self) -> BreakerMachine:
        """The state machine; an unended probe frees its slot there."""

    def _record(self, generation: int, probe: bool, failed: bool, duration: float) -> None:
        """Record a call's outcome (ignored when ``generation`` is stale)."""


class BreakerPermit:
    """The right to make one call, returned by :meth:`CircuitBreaker.acquire`.

    End it with exactly one of :meth:`success`, :meth:`failure` or
    :meth:`release`; later calls are no-ops, so ``finally: permit.release()``
    after a recorded outcome is safe.
    """

    __slots__ = ("_breaker", "_done", "_generation", "_probe")

    def __init__(self, breaker: PermitIssuer, generation: int, probe: bool) -> None:
        self._breaker = breaker
        self._generation = generation
        self._probe = probe
        self._done = False

    @property
    def is_probe(self) -> bool:
        """Whether this call is a half-open probe (its outcome decides the state)."""
        return self._probe

    @property
    def done(self) -> bool:
        """Whether the permit has been ended."""
        return self._done

    def success(self, duration: float) -> None:
        """The call succeeded after ``duration`` seconds (slow calls still count as slow)."""
        if not self._done:
            self._done = True
            self._breaker._record(self._generation, self._probe, False, duration)

    def failure(self, duration: float) -> None:
        """The call failed after ``duration`` seconds."""
        if not self._done:
            self._done = True
            self._breaker._record(self._generation, self._probe, True, duration)

    def release(self) -> None:
        """The call ended without an outcome (cancelled, a hedge that lost): record nothing."""
        if not self._done:
            self._done = True
            if self._probe:
                m = self._breaker._machine
                with m.lock:
                    m.release(self._generation, True)

    def __repr__(self) -> str:
        kind = "probe" if self._probe else "call"
        return f"<BreakerPermit {kind} of {self._breaker.name!r} done={self._done}>"
