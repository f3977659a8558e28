"""Retry for any async callable (seed 002): ``retry_async``, ``@with_retry``,
``@with_network_retry`` and ``@with_api_retry``.

They share :class:`~httpx_resilience.RetryPolicy`'s backoff and, optionally, a
:class:`~httpx_resilience.RetryBudget` with the HTTP pipeline. Every failed
attempt logs a WARNING (``Attempt n/N failed: ... Retrying in d s``), a success
after retries logs INFO, and exhaustion logs ERROR, on the
``httpx_resilience.retry`` logger.

Note: ``retry_async(func, *args, **kwargs)`` passes unknown keywords through to
``func``; the retry settings are keyword-only and take precedence.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..config import JitterKind
from ..exceptions import (
    BulkheadFullError,
    CircuitBreakerOpenError,
    ConfigurationError,
    HTTPRequestError,
    HTTPResponseError,
    RateLimitError,
    RateLimiterTimeout,
    RetryExhaustedError,
)
from .budget import RetryBudget
from .retry import RetryPolicy

__all__ = [
    "NETWORK_ERRORS",
    "RetryStats",
    "is_api_error",
    "is_network_error",
    "retry_async",
    "with_api_retry",
    "with_network_retry",
    "with_retry",
]

P = ParamSpec("P")
T = TypeVar("T")

_log = logging.getLogger("httpx_resilience.retry")

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    HTTPRequestError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)
"""Exceptions that mean "the network failed"; ``aiohttp.ClientError`` is added when installed."""

# Refusals made before anything was sent: retrying them immediately only adds load.
_NEVER: tuple[type[BaseException], ...] = (
    CircuitBreakerOpenError,
    RateLimiterTimeout,
    BulkheadFullError,
    RetryExhaustedError,
)


def _aiohttp_errors() -> tuple[type[BaseException], ...]:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp is an optional extra
        return ()
    return (aiohttp.ClientError,)


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection/timeout failure worth retrying."""
    if isinstance(exc, _NEVER):
        return False
    return isinstance(exc, NETWORK_ERRORS + _aiohttp_errors())


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HTTPResponseError):
        return exc.status_code
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def is_api_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient API failure: a network error, 5xx, 408 or 429.

    Other 4xx statuses are never retried.
    """
    if is_network_error(exc):
        return True
    status = _status_of(exc)
    return status is not None and (status >= 500 or status in (408, 429))


@dataclass(slots=True)
class RetryStats:
    """Counters a retry helper updates (seed 002's retry metrics).

    Attributes:
        calls: logical calls made.
        attempts: attempts made in all.
        retries: retries made.
        recovered: calls that succeeded after at least one retry.
        exhausted: calls that failed after every attempt.
        by_exception: failed attempts by exception type name.
    """

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    recovered: int = 0
    exhausted: int = 0
    by_exception: dict[str, int] = field(default_factory=dict)


async def retry_async(
    func: Callable[..., Awaitable[T]],
    *args: Any,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    max_delay: float = 60.0,
    jitter: JitterKind = "none",
    retry_if: Callable[[BaseException], bool] | None = None,
    budget: RetryBudget | None = None,
    budget_key: str = "",
    reraise: bool = False,
    stats: RetryStats | None = None,
    name: str | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    **kwargs: Any,
) -> T:
    """Call ``await func(*args, **kwargs)``, retrying failures with exponential backoff.

    Retry ``n`` (from 0) waits ``delay * backoff**n`` capped at ``max_delay``
    (1, 2, 4 s by default; no jitter unless asked), or the ``retry_after`` of a
    :class:`RateLimitError` when it is larger.

    Args:
        func: the async callable.
        max_attempts: attempts in all, the first included.
        delay: the first delay in seconds.
        backoff: the multiplier per retry.
        exceptions: exception types that are retried; others propagate at once.
        max_delay: cap on one delay.
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"``.
        retry_if: a further filter; return ``False`` to stop retrying an exception.
        budget: a shared :class:`RetryBudget` (retries stop when it is spent).
        budget_key: the budget's key (for example a host name).
        reraise: on exhaustion, raise the last exception itself instead of
            :class:`RetryExhaustedError`.
        stats: counters to update.
        name: the operation's name in log lines (``func.__qualname__`` by default).
        clock: the time source.
        rng: the random source for jitter.

    Raises:
        RetryExhaustedError: every attempt failed (the last error is its
            ``__cause__`` and ``last_error``); with ``reraise=True`` the last error.
        ConfigurationError: invalid settings.
    """
    if not callable(func):
        raise ConfigurationError(f"func must be an async callable, got {func!r}", field="func")
    policy = RetryPolicy(
        max_attempts=max_attempts,
        backoff_factor=delay,
        multiplier=backoff,
        max_delay=max_delay,
        jitter=jitter,
    )
    return await _run(
        policy, func, args, kwargs,
        exceptions=exceptions if isinstance(exceptions, tuple) else (exceptions,),
        retry_if=retry_if, budget=budget, budget_key=budget_key, reraise=reraise,
        stats=stats, name=name, clock=clock or SYSTEM_CLOCK, rng=rng,
    )


async def _run(
    policy: RetryPolicy,
    func: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    exceptions: tuple[type[BaseException], ...],
    retry_if: Callable[[BaseException], bool] | None,
    budget: RetryBudget | None,
    budget_key: str,
    reraise: bool,
    stats: RetryStats | None,
    name: str | None,
    clock: Clock,
    rng: random.Random | None,
) -> T:
    label = name or getattr(func, "__qualname__", repr(func))
    n = policy.max_attempts
    if stats is not None:
        stats.calls += 1
    if budget is not None:
        budget.record_request(budget_key)
    previous: float | None = None
    attempt = 0
    while True:
        attempt += 1
        if stats is not None:
            stats.attempts += 1
        try:
            result = await func(*args, **kwargs)
        except exceptions as exc:
            if stats is not None:
                key = type(exc).__name__
                stats.by_exception[key] = stats.by_exception.get(key, 0) + 1
            if retry_if is not None and not retry_if(exc):
                raise
            why: str | None = None
            if attempt >= n:
                why = f"all {n} attempts failed"
            elif budget is not None and not budget.try_spend(budget_key):
                why = "the retry budget is spent"
            if why is not None:
                if stats is not None:
                    stats.exhausted += 1
                _log.error(
                    "%s: %s. Last error: %s: %s", label, why, type(exc).__name__, exc,
                    extra={"operation": label, "attempts": attempt, "max_attempts": n},
                )
                if reraise:
                    raise
                raise RetryExhaustedError(
                    f"{label}: {why}; last error {type(exc).__name__}: {exc}",
                    attempts=attempt,
                    last_error=exc,
                    retry_after=getattr(exc, "retry_after", None),
                ) from exc
            wait = policy.backoff(attempt - 1, previous=previous, rng=rng)
            server = exc.retry_after if isinstance(exc, RateLimitError) else None
            if server is not None and server > wait:
                wait = min(server, policy.max_delay)
            _log.warning(
                "%s: attempt %d/%d failed: %s: %s. Retrying in %.2f s",
                label, attempt, n, type(exc).__name__, exc, wait,
                extra={"operation": label, "attempt": attempt, "max_attempts": n, "delay": wait},
            )
            if stats is not None:
                stats.retries += 1
            previous = wait
            await clock.sleep(wait)
        else:
            if attempt > 1:
                if stats is not None:
                    stats.recovered += 1
                _log.info(
                    "%s: succeeded after %d attempts", label, attempt,
                    extra={"operation": label, "attempts": attempt},
                )
            return result


def with_retry(
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    **options: Any,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate an async function so each call is made through :func:`retry_async`.

    ``options`` are :func:`retry_async`'s other keywords (``max_delay``,
    ``jitter``, ``retry_if``, ``budget``, ``reraise``, ``stats``, ``clock``, ...).
    Settings are validated when the decorator is applied.
    """
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise ConfigurationError(
            f"with_retry got unknown option(s) {sorted(unknown)}; "
            f"valid ones are {sorted(_OPTION_NAMES)}",
            field=sorted(unknown)[0],
        )
    RetryPolicy(max_attempts=max_attempts, backoff_factor=delay, multiplier=backoff,
                max_delay=options.get("max_delay", 60.0), jitter=options.get("jitter", "none"))
    exc_types = exceptions if isinstance(exceptions, tuple) else (exceptions,)

    def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        if not asyncio.iscoroutinefunction(func):
            raise ConfigurationError(
                f"@with_retry needs an async function; {func!r} is not one", field="func"
            )

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            policy = RetryPolicy(
                max_attempts=max_attempts, backoff_factor=delay, multiplier=backoff,
                max_delay=options.get("max_delay", 60.0), jitter=options.get("jitter", "none"),
            )
            return await _run(
                policy, func, args, kwargs,
                exceptions=exc_types,
                retry_if=options.get("retry_if"),
                budget=options.get("budget"),
                budget_key=options.get("budget_key", ""),
                reraise=options.get("reraise", False),
                stats=options.get("stats"),
                name=options.get("name") or func.__qualname__,
                clock=options.get("clock") or SYSTEM_CLOCK,
                rng=options.get("rng"),
            )

        return wrapper

    return decorate


_OPTION_NAMES = frozenset(
    {"max_delay", "jitter", "retry_if", "budget", "budget_key", "reraise", "stats", "name",
     "clock", "rng"}
)

Kind = Literal["network", "api"]


def _specialised(kind: Kind, max_attempts: int, delay: float, backoff: float,
                 options: dict[str, Any]) -> Callable[[Callable[P, Awaitable[T]]],
                                                      Callable[P, Awaitable[T]]]:
    predicate = is_network_error if kind == "network" else is_api_error
    user_filter = options.pop("retry_if", None)

    def retry_if(exc: BaseException) -> bool:
        return predicate(exc) and (user_filter is None or bool(user_filter(exc)))

    return with_retry(max_attempts, delay, backoff, (Exception,), retry_if=retry_if, **options)


def with_network_retry(
    max_attempts: int = 3, delay: float = 1.0, backoff: float = 2.0, **options: Any
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Retry only network failures: connection errors and timeouts (httpx, asyncio,
    the stdlib, and aiohttp when installed). Refusals such as an open circuit are not retried.
    """
    return _specialised("network", max_attempts, delay, backoff, options)


def with_api_retry(
    max_attempts: int = 3, delay: float = 1.0, backoff: float = 2.0, **options: Any
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Retry network failures and transient API statuses (5xx, 408, 429), never other 4xx.

    A :class:`RateLimitError`'s ``retry_after`` is honoured (capped at ``max_delay``).
    """
    return _specialised("api", max_attempts, delay, backoff, options)
