"""The rate limiter interface, and the argument checks the built-in limiters share.

:class:`RateLimiter` is what the transport talks to; the built-in
:class:`~httpx_resilience.policies.limiter.TokenBucketRateLimiter` and
:class:`~httpx_resilience.policies.limiter.SlidingWindowRateLimiter` implement
it on top of :class:`~httpx_resilience.policies.limiter._queue.QueuedLimiter`.
"""

from __future__ import annotations

import abc
import logging
import math

import httpx

from ...exceptions import ConfigurationError, RateLimiterTimeout

__all__ = [
    "DEFAULT_MAX_PAUSE",
    "RateLimiter",
    "bad_tokens",
    "cap_pause",
    "check_count",
    "check_seconds",
    "deadline_error",
    "timeout_error",
]

DEFAULT_MAX_PAUSE = 60.0
"""Seconds: the longest pause a server can impose on a limiter by default."""


class RateLimiter(abc.ABC):
    """The interface of a client-side rate limiter (seed 001's ABC).

    Subclass it to plug in your own; :meth:`for_key`, :meth:`pause` and
    :meth:`observe_response` have harmless defaults.
    """

    @abc.abstractmethod
    async def acquire(self, tokens: int = 1) -> float:
        """Wait until ``tokens`` may be spent, spend them, and return the seconds waited.

        Raises:
            RateLimiterTimeout: the wait would exceed ``max_wait``; nothing was granted.
            ConfigurationError: ``tokens`` is < 1 or more than the limiter can ever grant.
        """

    def acquire_sync(self, tokens: int = 1, *, timeout: float | None = None) -> float:
        """:meth:`acquire` for synchronous code: block the calling thread only.

        The built-in limiters wait in the same FIFO queue as :meth:`acquire`,
        and ``timeout`` (a request's deadline) bounds the wait besides
        ``max_wait`` (``TimeoutError`` past it). This default serves a subclass
        written for async code alone: it takes the tokens with
        :meth:`try_acquire` when that needs no waiting.

        Raises:
            ConfigurationError: the subclass cannot grant without waiting and
                does not implement ``acquire_sync``.
        """
        if self.try_acquire(tokens):
            return 0.0
        raise ConfigurationError(
            f"{type(self).__name__} cannot wait in synchronous code: implement "
            "acquire_sync(tokens) (block the calling thread until granted, return the "
            "seconds waited) to use it from a thread or httpx.Client",
            field="rate_limiter",
        )

    @abc.abstractmethod
    def is_configured(self) -> bool:
        """Whether the limiter actually limits (a disabled one may say ``False``)."""

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` at once if that needs no waiting; ``False`` (nothing taken) otherwise.

        The pipeline calls this first so the common case costs no timer; the
        default says ``False`` and :meth:`acquire` is used.
        """
        return False

    def for_key(self, key: str) -> RateLimiter:
        """The limiter for ``key`` (a host); the default shares one limiter for all keys."""
        return self

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` (server-driven pacing); the default ignores it.

        The pipeline calls it for a ``Retry-After``, never with more than the
        retry policy's ``max_delay``; the built-in limiters also cap every
        pause at their ``max_pause``.
        """

    def observe_response(self, response: httpx.Response) -> None:
        """Learn from a response's rate-limit headers; the default ignores them."""


def check_count(value: object, field: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(
            f"{field} must be an integer >= {minimum}, got {value!r}", field=field
        )
    return value


def check_seconds(value: object, field: str, *, allow_zero: bool) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and (seconds > 0 or (allow_zero and seconds == 0)):
            return seconds
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigurationError(f"{field} must be a finite number {bound}, got {value!r}", field=field)


def bad_tokens(tokens: int, capacity: int, limiter: object) -> ConfigurationError:
    """The error for an ``acquire`` of ``tokens`` that can never be granted."""
    if tokens < 1:
        return ConfigurationError(f"tokens must be >= 1, got {tokens}", field="tokens")
    return ConfigurationError(
        f"cannot acquire {tokens} tokens: this limiter grants at most {capacity} "
        f"at once ({limiter!r}); raise its capacity or split the request",
        field="tokens",
    )


def timeout_error(
    tokens: int, waited: float, needed: float, max_wait: float | None
) -> RateLimiterTimeout:
    """The refusal of a grant that would come later than ``max_wait``."""
    return RateLimiterTimeout(
        f"rate limiter would wait {waited + needed:.3f} s for {tokens} token(s), "
        f"more than max_wait={max_wait} s",
        waited=waited,
        needed=needed,
    )


def deadline_error(tokens: int, would: float, left: float) -> TimeoutError:
    """The refusal of a sync wait that would end ``would`` seconds after it began, past the
    ``left`` seconds its caller had (its request's deadline)."""
    return TimeoutError(
        f"rate limiter: {tokens} token(s) would be granted after {would:.3f} s, past the "
        f"{left:.3f} s left (the deadline); nothing was granted"
    )


def cap_pause(seconds: float, max_pause: float) -> float:
    """``seconds``, cut to ``max_pause`` with a warning (one response must not stall for days)."""
    if seconds > max_pause:
        logging.getLogger("httpx_resilience.limiter").warning(
            "Rate limiter pause of %.0f s cut to max_pause=%g s", seconds, max_pause,
            extra={"pause": seconds, "max_pause": max_pause},
        )
        return max_pause
    return seconds
