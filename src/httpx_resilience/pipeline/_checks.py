"""Settings of the pipeline that are valid alone but contradict each other.

Each policy validates its own fields when it is built (``__post_init__``);
what none of them can see is how they combine inside one
:class:`~httpx_resilience.ResilientTransport`. :func:`check_pipeline` rejects
the combinations that would silently defeat a policy, at construction (as
Polly's standard resilience handler does), rather than letting the first
slow request discover them:

* an attempt timeout longer than the total deadline (the attempt timeout
  would never fire);
* a time-windowed, rate-based breaker whose window is shorter than two
  attempt timeouts (slow attempts never fill it, so it never opens);
* hedges scheduled past the total deadline (they could never start).

A pure function of the settings, so it is tested without a transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..policies.breaker import CircuitBreaker
    from ..policies.hedging import HedgingPolicy

__all__ = ["check_pipeline"]


def check_pipeline(
    timeout: float | None,
    total_timeout: float | None,
    circuit_breaker: CircuitBreaker | None,
    hedging: HedgingPolicy | None,
) -> None:
    """Reject contradictory set-ups at construction, like Polly's standard handler.

    Args:
        timeout: seconds for one attempt, or ``None``.
        total_timeout: seconds for the whole logical request, or ``None``.
        circuit_breaker: the transport's breaker, if any.
        hedging: the transport's hedging policy, if any.

    Raises:
        ConfigurationError: one of the contradictions in the module docstring,
            naming the field to change.
    """
    t, total = timeout, total_timeout
    if t is not None and total is not None and t > total:
        raise ConfigurationError(
            f"timeout ({t:g} s, one attempt) must be <= total_timeout ({total:g} s)",
            field="timeout",
        )
    cb = circuit_breaker
    # getattr: the pipeline only calls the breaker's methods, so a stand-in
    # without these settings (a test double, say) is accepted and not checked.
    window = getattr(cb, "window_size", None)
    if (
        cb is not None
        and t is not None
        and getattr(cb, "window_type", None) == "time"
        and isinstance(window, (int, float))
        and getattr(cb, "failure_rate_threshold", None) is not None
        and window < 2 * t
    ):
        raise ConfigurationError(
            f"circuit breaker window_size ({window:g} s) must be at least twice the "
            f"attempt timeout ({t:g} s), or slow attempts never fill the window",
            field="window_size",
        )
    h = hedging
    if (
        h is not None
        and total is not None
        # An adaptive delay is not known in advance.
        and isinstance(h.delay, (int, float))
        and h.max_hedges * h.delay >= total
    ):
        raise ConfigurationError(
            f"hedging max_hedges × delay ({h.max_hedges} × {h.delay:g} s) must be "
            f"< total_timeout ({total:g} s)",
            field="hedging",
        )
