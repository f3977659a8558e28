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

:func:`check_override` validates one per-request override read from
``request.extensions["resilience"]`` (a plain httpx caller can put anything
there): a wrong type or value is a :class:`ConfigurationError` naming the key,
not a ``TypeError`` from deep inside the retry loop.

Pure functions of the settings, so they are tested without a transport.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from ..config import check_number, is_default
from ..exceptions import ConfigurationError
from ..policies.fallback import as_fallback
from ..policies.hedging import HedgingPolicy
from ..policies.retry import RetryPolicy

if TYPE_CHECKING:
    from ..policies.breaker import CircuitBreaker
    from ._extensions import ResilienceOptions

__all__ = [
    "check_ext",
    "check_header_name",
    "check_override",
    "check_pipeline",
    "check_seconds",
    "override",
]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

# What each override must be: seconds (or None), a policy, a flag, a byte count.
_SECONDS = frozenset({"timeout", "total_timeout"})
_FLAGS = frozenset({"idempotent", "stream"})


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
        # only a window that was given contradicts: the default's 100 s is a guess
        and not is_default(window)
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


def check_ext(ext: object) -> ResilienceOptions:
    """``request.extensions["resilience"]``: a mapping of overrides (``None`` → empty).

    Raises:
        ConfigurationError: it is not a mapping.
    """
    if ext is None or isinstance(ext, Mapping):
        return cast("ResilienceOptions", ext or {})
    raise ConfigurationError(
        f'extensions["resilience"] must be a mapping of per-request overrides, got '
        f"{type(ext).__name__}",
        field="extensions",
    )


def check_override(name: str, value: Any) -> Any:
    """One per-request override, validated; returned as it is (a ``fallback`` as a ``Fallback``).

    Args:
        name: the key in ``extensions["resilience"]``.
        value: its value (the caller skips values that are the transport's own).

    Raises:
        ConfigurationError: a value of the wrong type or out of range, naming the key.
    """
    field = f'extensions["resilience"]["{name}"]'
    if name in _SECONDS:
        return check_seconds(field, value)
    elif name in _FLAGS:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{field} must be True or False, got {value!r}", field=name)
    elif name == "max_response_bytes":
        check_number(field, value, minimum=1, integer=True, optional=True)
    elif name == "retry" and not isinstance(value, RetryPolicy):
        raise ConfigurationError(
            f"{field} must be a RetryPolicy, got {type(value).__name__}", field=name
        )
    elif name == "hedging" and value is not None and not isinstance(value, HedgingPolicy):
        raise ConfigurationError(
            f"{field} must be a HedgingPolicy or None, got {type(value).__name__}", field=name
        )
    elif name == "fallback":
        return as_fallback(value, field)  # a bare response or callable becomes a Fallback
    return value


def override(ext: Mapping[str, Any], name: str, default: Any) -> Any:
    """The override ``name`` from ``ext`` (validated), else ``default`` (not checked again)."""
    value = ext.get(name, default)
    return value if value is default else check_override(name, value)


def check_seconds(name: str, value: Any) -> float | None:
    """A duration setting: ``None`` or a finite number > 0, as a ``float``.

    Raises:
        ConfigurationError: anything else, an ``int`` too large for a float included.
    """
    check_number(name, value, minimum=0, exclusive_min=True, optional=True)  # ints ≤ 2**53 too
    return None if value is None else float(value)


def check_header_name(name: str, value: object) -> None:
    """A header name setting (``request_id_header``): ``None`` or an HTTP token.

    Raises:
        ConfigurationError: not a string of token characters (it could not be sent).
    """
    if value is None or (isinstance(value, str) and _TOKEN.match(value)):
        return
    raise ConfigurationError(
        f"{name} must be a header name (letters, digits and !#$%&'*+-.^_`|~) or None, "
        f"got {value!r:.60}",
        field=name,
    )
