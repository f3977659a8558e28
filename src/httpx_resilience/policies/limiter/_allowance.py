"""The arithmetic of a limit, apart from any queue: what may be granted, and when.

A :class:`~httpx_resilience.policies.limiter._queue.QueuedLimiter` owns one
:class:`Allowance` and asks it, always passing the time in: are ``tokens``
there now (take them), how long until they are, and, through a
:class:`Schedule`, when the waiters queued ahead would be served. The token
bucket (:mod:`._token_bucket`) and the sliding-window log
(:mod:`._sliding_window`) are the two allowances; neither reads a clock nor
knows about waiters.
"""

from __future__ import annotations

import abc

__all__ = ["EPS", "Allowance", "Schedule"]

EPS = 1e-9
"""Seconds of float noise tolerated when deciding that a wait is over."""


class Schedule(abc.ABC):
    """A simulation of future grants, used to predict when a waiter will be served."""

    @abc.abstractmethod
    def grant_time(self, tokens: int) -> float:
        """When ``tokens`` would be granted after everything committed so far."""

    @abc.abstractmethod
    def commit(self, tokens: int, at: float) -> None:
        """Account for a grant of ``tokens`` at ``at``."""


class Allowance(abc.ABC):
    """The state and arithmetic of one limit; every method is given ``now``.

    Attributes:
        capacity: the most tokens one request may ask for.
    """

    __slots__ = ()

    capacity: int

    @abc.abstractmethod
    def try_take(self, tokens: int, now: float) -> bool:
        """Take ``tokens`` at ``now`` if they are there; ``False`` (nothing taken) otherwise."""

    @abc.abstractmethod
    def wait_for(self, tokens: int, now: float) -> float:
        """Seconds from ``now`` until ``tokens`` are there (≤ 0: they are)."""

    @abc.abstractmethod
    def take(self, tokens: int, now: float) -> None:
        """Spend ``tokens`` at ``now`` (only after :meth:`wait_for` said they are there)."""

    @abc.abstractmethod
    def schedule(self, now: float, start: float) -> Schedule:
        """A simulation of grants from ``now``, none earlier than ``start``."""

    def quick_estimate(self, total: int, start: float) -> float | None:
        """When ``total`` tokens, granted in turn from ``start``, are all granted.

        For an allowance with a closed form (O(1) instead of a walk over the
        queue); ``None`` (the default) when the grants must be simulated one
        by one with :meth:`schedule`.
        """
        return None

    @abc.abstractmethod
    def is_idle(self, now: float) -> bool:
        """Whether forgetting this allowance loses nothing (a full bucket, an empty log)."""

    @abc.abstractmethod
    def describe(self, now: float) -> str:
        """The settings and the state at ``now``, for the limiter's repr."""
