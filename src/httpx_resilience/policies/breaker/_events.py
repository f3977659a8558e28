"""A circuit breaker's transitions: the frozen event, the log line and the listeners.

Every transition is logged at WARNING on ``httpx_resilience.breaker`` and,
as a :class:`BreakerTransition`, delivered to the breaker's listeners; a
listener that raises is logged and ignored, so observing never breaks a call.
:func:`describe` words a breaker's state for its repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ._machine import BreakerMachine, Change, CircuitState

__all__ = ["BreakerTransition", "announce", "describe"]

logger = logging.getLogger("httpx_resilience.breaker")


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change of a breaker, as delivered to listeners.

    Attributes:
        name: the breaker's name (its key when it is a per-host child).
        old: the state before.
        new: the state after.
        at: when it happened, on the breaker's monotonic clock.
        reason: why, in words ("5 consecutive failures", "half-open probe failed").
    """

    name: str
    old: CircuitState
    new: CircuitState
    at: float
    reason: str


def announce(
    name: str,
    listeners: Iterable[Callable[[BreakerTransition], None]],
    change: Change,
    now: float,
) -> None:
    """Log the transition ``change`` of breaker ``name`` and deliver it to ``listeners``.

    ``listeners`` is iterated once, over a snapshot, so a listener may add
    another without disturbing this delivery.
    """
    old, new, reason = change
    logger.warning(
        "circuit breaker %r: %s -> %s (%s)",
        name,
        old.value,
        new.value,
        reason,
        extra={
            "breaker": name,
            "old_state": old.value,
            "new_state": new.value,
            "reason": reason,
        },
    )
    fns = tuple(listeners)
    if not fns:
        return
    event = BreakerTransition(name, old, new, now, reason)
    for fn in fns:
        try:
            fn(event)
        except Exception:
            logger.exception("circuit breaker %r: listener %r raised; ignored", name, fn)


def describe(name: str, m: BreakerMachine, now: float, keys: tuple[int, int] | None) -> str:
    """A breaker's repr: its name, state, counters and (``keys``) its children in use/max."""
    s = m.settings
    text = (
        f"<CircuitBreaker {name!r} state={m.state.value} "
        f"failures={m.consecutive_failures}/{s.failure_threshold}"
    )
    if m.state is CircuitState.OPEN:
        text += f" retry_in={m.retry_in(now):.1f}s"
    elif m.state is CircuitState.HALF_OPEN:
        text += f" probes={m.probes_in_flight}+{m.probe_successes}/{s.half_open_max_calls}"
    if keys is not None:
        text += f" keys={keys[0]}/{keys[1]}"
    return text + ">"
