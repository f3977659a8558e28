"""Retry for any callable, async or not (seed 002): ``retry_async``, ``retry``,
``@with_retry``, ``@with_network_retry`` and ``@with_api_retry``.

They share :class:`~httpx_resilience.RetryPolicy`'s backoff and, optionally, a
:class:`~httpx_resilience.RetryBudget` with the HTTP pipeline. Every failed
attempt logs a WARNING (``Attempt n/N failed: ... Retrying in d s``), a success
after retries logs INFO, and exhaustion logs ERROR, on the
``httpx_resilience.retry`` logger.

When the attempts (or the budget) run out, the **last exception itself** is
re-raised, as seed 002 shows: its traceback is the original error's, and a note
(PEP 678, shown under the traceback) says how many attempts were made. Pass
``wrap_exhausted=True`` to get a :class:`~httpx_resilience.RetryExhaustedError`
instead (the last error is its ``__cause__`` and ``last_error``).

Async and sync. :func:`retry_async` takes anything callable that returns an
awaitable: an async function, a bound async method, an object with an
``async __call__``, a :func:`functools.partial` of an async function, or a
plain function that returns a coroutine or a future. :func:`retry` is its
twin for plain (sync) functions: it blocks the calling thread between
attempts, sleeping on the injected clock (``clock.sleep_sync``). The
decorators look at what they decorate: an ``async def`` function (or a
partial of one, or an object whose ``__call__`` is ``async def``) stays
async; any other callable stays sync, and the type checker sees the same
(overloads). A plain function that returns an awaitable is retried
asynchronously from the attempt that returned one (its wrapper then returns
a coroutine); an exception it raises before returning anything is retried
as a sync call, so decorate it as ``async def`` to keep every wait async.

The attempt and decision logic is written once, in :mod:`._retry_loop`:
only the call and the sleep differ between the async and sync paths.

Note: ``retry_async(func, *args, **kwargs)`` and ``retry(...)`` pass unknown
keywords through to ``func``; the retry settings are keyword-only and take
precedence.

The decorators keep the callable's parameters and result type (a ``ParamSpec``)
and type their options (:class:`RetryOptions`). The testing switch
(:func:`httpx_resilience.testing.set_testing`), read when a call starts, makes
it never sleep (``Retry-After`` included) and make at most its ``attempts``.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Literal, ParamSpec, Protocol, TypedDict, TypeVar, overload

from ..clock import SYSTEM_CLOCK, Clock
from ..config import JitterKind
from ..exceptions import ConfigurationError
from ._errors import NETWORK_ERRORS, is_api_error, is_network_error
from ._retry_loop import (
    RetrySettings,
    RetryStats,
    is_async_callable,
    name_of,
    run_async,
    run_sync,
)
from .budget import RetryBudget
from .retry import RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Unpack  # PEP 692 (typing.Unpack from 3.11); types only

__all__ = [
    "NETWORK_ERRORS",
    "RetryDecorator",
    "RetryOptions",
    "RetryStats",
    "is_api_error",
    "is_network_error",
    "retry",
    "retry_async",
    "with_api_retry",
    "with_network_retry",
    "with_retry",
]

P = ParamSpec("P")
T = TypeVar("T")

_Exceptions = tuple[type[BaseException], ...] | type[BaseException]


class RetryDecorator(Protocol):
    """A decorator keeping ``func``'s parameters and result: an async callable (or one
    returning an awaitable) gives a coroutine; a plain function stays a plain function."""

    @overload
    def __call__(
        self, func: Callable[P, Awaitable[T]], /
    ) -> Callable[P, Coroutine[object, None, T]]: ...

    @overload
    def __call__(self, func: Callable[P, T], /) -> Callable[P, T]: ...


class RetryOptions(TypedDict, total=False):
    """The decorators' other keywords: each is :func:`retry_async`'s of the same name."""

    max_delay: float
    jitter: JitterKind
    retry_if: Callable[[BaseException], bool] | None
    budget: RetryBudget | None
    budget_key: str
    wrap_exhausted: bool
    stats: RetryStats | None
    name: str | None
    clock: Clock | None
    rng: random.Random | None


@functools.lru_cache(maxsize=128, typed=True)  # typed: 1, 1.0 and True are distinct keys
def _cached_policy(
    max_attempts: int, delay: float, backoff: float, max_delay: float, jitter: JitterKind
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts, backoff_factor=delay, multiplier=backoff,
        max_delay=max_delay, jitter=jitter,
    )


def _policy(
    max_attempts: int, delay: float, backoff: float, max_delay: float, jitter: JitterKind
) -> RetryPolicy:
    """The policy of these settings, validated once per distinct set: validation is
    most of the cost of a ``retry``/``retry_async`` call that succeeds at once."""
    key = (max_attempts, delay, backoff, max_delay, jitter)
    try:
        hash(key)
    except TypeError:  # an unhashable value: validated (and refused) without the cache
        return _cached_policy.__wrapped__(*key)
    return _cached_policy(*key)


def _settings(
    max_attempts: int, delay: float, backoff: float, exceptions: _Exceptions,
    options: RetryOptions,
) -> RetrySettings:
    """The settings, validated (a bad value is a ``ConfigurationError`` naming it)."""
    return RetrySettings(
        policy=_policy(
            max_attempts, delay, backoff,
            options.get("max_delay", 60.0), options.get("jitter", "none"),
        ),
        exceptions=exceptions if isinstance(exceptions, tuple) else (exceptions,),
        retry_if=options.get("retry_if"),
        budget=options.get("budget"),
        budget_key=options.get("budget_key", ""),
        wrap=options.get("wrap_exhausted", False),
        stats=options.get("stats"),
        clock=options.get("clock") or SYSTEM_CLOCK,
        rng=options.get("rng"),
    )


def _check_callable(func: object, what: str) -> None:
    if not callable(func):
        raise ConfigurationError(f"{what} needs a callable; {func!r} is not callable", field="func")


async def retry_async(
    func: Callable[..., Awaitable[T]],
    *args: object,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: _Exceptions = (Exception,),
    max_delay: float = 60.0,
    jitter: JitterKind = "none",
    retry_if: Callable[[BaseException], bool] | None = None,
    budget: RetryBudget | None = None,
    budget_key: str = "",
    wrap_exhausted: bool = False,
    stats: RetryStats | None = None,
    name: str | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    **kwargs: object,
) -> T:
    """Call ``await func(*args, **kwargs)``, retrying failures with exponential backoff.

    Retry ``n`` (from 0) waits ``delay * backoff**n`` capped at ``max_delay``
    (1, 2, 4 s by default; no jitter unless asked), or longer when the server
    asked for it: a :class:`RateLimitError`'s ``retry_after``, or the
    ``Retry-After`` of a 429/503 the exception carries (capped at ``max_delay``).

    Args:
        func: any callable returning an awaitable (see the module's docstring).
        max_attempts: attempts in all, the first included.
        delay: the first delay in seconds.
        backoff: the multiplier per retry.
        exceptions: exception types that are retried; others propagate at once.
        max_delay: cap on one delay.
        jitter: ``"none"``, ``"full"``, ``"equal"`` or ``"decorrelated"``.
        retry_if: a further filter; return ``False`` to stop retrying an exception.
        budget: a shared :class:`RetryBudget` (retries stop when it is spent).
        budget_key: the budget's key (for example a host name).
        wrap_exhausted: on exhaustion, raise :class:`RetryExhaustedError`
            (chaining the last error) instead of re-raising the last error.
        stats: counters to update.
        name: the operation's name in log lines (``func``'s qualified name by default).
        clock: the time source.
        rng: the random source for jitter.

    Raises:
        Exception: on exhaustion, the last error itself, with a note giving the
            attempt count (``RetryExhaustedError`` with ``wrap_exhausted=True``).
        ConfigurationError: invalid settings, or ``func`` returned something
            that cannot be awaited.
    """
    _check_callable(func, "retry_async")
    settings = _settings(max_attempts, delay, backoff, exceptions, RetryOptions(
        max_delay=max_delay, jitter=jitter, retry_if=retry_if, budget=budget,
        budget_key=budget_key, wrap_exhausted=wrap_exhausted, stats=stats, clock=clock, rng=rng,
    ))
    return await run_async(settings, name or name_of(func), func, args, kwargs)


def retry(
    func: Callable[..., T],
    *args: object,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: _Exceptions = (Exception,),
    max_delay: float = 60.0,
    jitter: JitterKind = "none",
    retry_if: Callable[[BaseException], bool] | None = None,
    budget: RetryBudget | None = None,
    budget_key: str = "",
    wrap_exhausted: bool = False,
    stats: RetryStats | None = None,
    name: str | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    **kwargs: object,
) -> T:
    """Call ``func(*args, **kwargs)`` (a plain function), retrying failures with backoff.

    The sync twin of :func:`retry_async`: the same arguments, delays, logs,
    stats, budget and testing switch; between attempts the calling thread
    sleeps on ``clock`` (``clock.sleep_sync``; ``FakeClock`` only advances).

    Raises:
        Exception: on exhaustion, the last error itself, with a note giving the
            attempt count (``RetryExhaustedError`` with ``wrap_exhausted=True``).
        ConfigurationError: invalid settings, or ``func`` is async (it returned
            an awaitable): use ``await retry_async(...)``.
    """
    _check_callable(func, "retry")
    label = name or name_of(func)
    if is_async_callable(func):
        raise ConfigurationError(
            f"{label} is an async function: retry() calls plain functions; use "
            "`await retry_async(...)` for it",
            field="func",
        )
    settings = _settings(max_attempts, delay, backoff, exceptions, RetryOptions(
        max_delay=max_delay, jitter=jitter, retry_if=retry_if, budget=budget,
        budget_key=budget_key, wrap_exhausted=wrap_exhausted, stats=stats, clock=clock, rng=rng,
    ))
    return run_sync(settings, label, func, args, kwargs, hand_off=False)


class _Decorate:
    """What ``with_retry(...)`` returns: wraps a callable, async or sync, with one settings."""

    __slots__ = ("_name", "_settings")

    def __init__(self, settings: RetrySettings, name: str | None) -> None:
        self._settings = settings
        self._name = name

    @overload
    def __call__(
        self, func: Callable[P, Awaitable[T]], /
    ) -> Callable[P, Coroutine[object, None, T]]: ...

    @overload
    def __call__(self, func: Callable[P, T], /) -> Callable[P, T]: ...

    def __call__(self, func: Callable[P, T], /) -> Callable[P, T] | Callable[P, object]:
        _check_callable(func, "@with_retry")
        settings, label = self._settings, self._name or name_of(func)
        if is_async_callable(func):
            async_func: Callable[..., Awaitable[object]] = func  # type: ignore[assignment]

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
                return await run_async(settings, label, async_func, args, kwargs)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return run_sync(settings, label, func, args, kwargs, hand_off=True)

        return wrapper


_OPTION_NAMES: frozenset[str] = RetryOptions.__optional_keys__


def with_retry(
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: _Exceptions = (Exception,),
    **options: Unpack[RetryOptions],
) -> RetryDecorator:
    """Decorate a callable so each call is retried: through :func:`retry_async` when it
    is async (the decorated callable gives a coroutine), as :func:`retry` when it is a
    plain function (it stays one, blocking between attempts).

    ``options`` are :func:`retry_async`'s other keywords (``max_delay``,
    ``jitter``, ``retry_if``, ``budget``, ``wrap_exhausted``, ``stats``,
    ``clock``, ...: :class:`RetryOptions`). Settings are validated when the
    decorator is made. The decorated callable keeps its parameters and result type.
    """
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        hint = (
            "; the last error is now re-raised by default, pass wrap_exhausted=True "
            "for RetryExhaustedError" if "reraise" in unknown else ""
        )
        raise ConfigurationError(
            f"with_retry got unknown option(s) {sorted(unknown)}; "
            f"valid ones are {sorted(_OPTION_NAMES)}{hint}",
            field=sorted(unknown)[0],
        )
    settings = _settings(max_attempts, delay, backoff, exceptions, options)
    return _Decorate(settings, options.get("name"))


def _specialised(
    kind: Literal["network", "api"], max_attempts: int, delay: float, backoff: float,
    options: RetryOptions,
) -> RetryDecorator:
    predicate = is_network_error if kind == "network" else is_api_error
    user_filter = options.get("retry_if")

    def retry_if(exc: BaseException) -> bool:
        return predicate(exc) and (user_filter is None or bool(user_filter(exc)))

    merged: RetryOptions = {**options, "retry_if": retry_if}
    return with_retry(max_attempts, delay, backoff, (Exception,), **merged)


def with_network_retry(
    max_attempts: int = 3, delay: float = 1.0, backoff: float = 2.0,
    **options: Unpack[RetryOptions],
) -> RetryDecorator:
    """Retry only network failures (:func:`is_network_error`): connection errors,
    timeouts and bodies cut short, from httpx, asyncio, the stdlib, and aiohttp,
    requests and curl_cffi when they are loaded. Refusals such as an open
    circuit are not retried. Async and plain functions alike (see :func:`with_retry`).
    """
    return _specialised("network", max_attempts, delay, backoff, options)


def with_api_retry(
    max_attempts: int = 3, delay: float = 1.0, backoff: float = 2.0,
    **options: Unpack[RetryOptions],
) -> RetryDecorator:
    """Retry network failures and transient API statuses (5xx, 408, 429), never other 4xx.

    The status is read from the exception's ``.status_code``, ``.status`` or
    ``.response.status_code``. A :class:`RateLimitError`'s ``retry_after``, or
    the ``Retry-After`` of a 429/503 response the exception carries, is
    honoured (capped at ``max_delay``). Async and plain functions alike.
    """
    return _specialised("api", max_attempts, delay, backoff, options)
