"""A circuit breaker's settings: validated once, read through typed attributes.

:class:`BreakerSettings` is the frozen, validated configuration of the state
machine; :func:`check_options` validates the options only the edge has
(``scope``, ``max_keys``, ``name``, ``listeners``) and :func:`cooldown`
merges ``recovery_timeout`` with its alias ``cooldown_seconds``; :class:`Setting` is the
read-only attribute through which
:class:`~httpx_resilience.policies.breaker.CircuitBreaker` shows each setting
(``breaker.failure_threshold``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar, overload

from ...config import as_default, is_default
from ...exceptions import ConfigurationError

__all__ = ["BreakerSettings", "Setting", "SettingsOwner", "check_options", "cooldown"]

T = TypeVar("T")
L = TypeVar("L")


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
    window_size: float = as_default(100)
    minimum_calls: int = as_default(10)
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
            if self.uses_window and self.minimum_calls > ws and is_default(self.minimum_calls):
                # the default yields to a smaller window that was given
                object.__setattr__(self, "minimum_calls", as_default(int(ws)))
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


def check_options(scope: str, max_keys: int, name: str, listeners: Iterable[L]) -> list[L]:
    """Validate the breaker's own options; return the listeners as a list.

    Raises:
        ConfigurationError: a value is out of range; the message names the field.
    """
    if scope not in ("global", "host"):
        raise ConfigurationError(f"scope must be 'global' or 'host', got {scope!r}", field="scope")
    if not isinstance(max_keys, int) or isinstance(max_keys, bool) or max_keys < 1:
        raise ConfigurationError(
            f"max_keys must be an integer >= 1, got {max_keys!r}", field="max_keys"
        )
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"name must be a non-empty string, got {name!r}", field="name")
    fns = list(listeners)
    if not all(callable(fn) for fn in fns):
        raise ConfigurationError(
            "listeners must be callables taking a BreakerTransition", field="listeners"
        )
    return fns


class _HoldsSettings(Protocol):
    @property
    def settings(self) -> BreakerSettings: ...


class SettingsOwner(Protocol):
    """What a :class:`Setting` is read on: an object whose ``_machine`` holds the settings."""

    @property
    def _machine(self) -> _HoldsSettings: ...


class Setting(Generic[T]):
    """A typed, read-only attribute forwarding to the owner's :class:`BreakerSettings`."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, obj: SettingsOwner, owner: type) -> T: ...
    def __get__(self, obj: SettingsOwner | None, owner: type) -> Setting[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj._machine.settings, self._name)
        return value


def cooldown(recovery_timeout: float | None, cooldown_seconds: float | None) -> float:
    """The one cooldown from its two names (60 s when neither is given).

    Raises:
        ConfigurationError: both are given and differ, or ``cooldown_seconds``
            is not a finite number of seconds > 0 (``recovery_timeout`` is
            checked with the other settings).
    """
    if cooldown_seconds is not None and not (
        isinstance(cooldown_seconds, (int, float))
        and not isinstance(cooldown_seconds, bool)
        and 0.0 < cooldown_seconds < math.inf
    ):
        raise ConfigurationError(
            f"cooldown_seconds must be a finite number of seconds > 0, got {cooldown_seconds!r}",
            field="cooldown_seconds",
        )
    if recovery_timeout is None:
        return 60.0 if cooldown_seconds is None else cooldown_seconds
    if cooldown_seconds is not None and cooldown_seconds != recovery_timeout:
        raise ConfigurationError(
            "recovery_timeout and cooldown_seconds are the same setting (cooldown_seconds "
            f"is seed 003's name for it); give one, got {recovery_timeout!r} and "
            f"{cooldown_seconds!r}",
            field="cooldown_seconds",
        )
    return recovery_timeout
