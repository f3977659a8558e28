"""Retry for any async callable (seed 002): ``retry_async``, ``@with_retry``,
``@with_network_retry`` and ``@with_api_retry``.

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

``func`` may be anything callable that returns an awaitable: an async
function, a bound async method, an object with an ``async __call__``, a
:func:`functools.partial` of an async function, or a plain function that
returns a coroutine or a future.

Note: ``retry_async(func, *args, **kwargs)`` passes unknown keywords through to
``func``; the retry settings are keyword-only and take precedence.

The decorators keep the callable's parameters and result type (a ``ParamSpec``)
and type their options (:class:`RetryOptions`). The testing switch
(:func:`httpx_resilience.testing.set_testing`), read when a call starts, makes
it never sleep (``Retry-After`` included) and make at most its ``attempts``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, ParamSpec, Protocol, TypedDict, TypeVar

from ..clock import SYSTEM_CLOCK, Clock
from ..config import JitterKind
from ..exceptions import ConfigurationError, RetryExhaustedError
from ._errors import NETWORK_ERRORS, is_api_error, is_network_error, server_delay
from ._testing_mode import active
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
    "retry_async",
    "with_api_retry",
    "with_network_retry",
    "with_retry",
]

P = ParamSpec("P")
T = TypeVar("T")

_log = logging.getLogger("httpx_resilience.retry")


class RetryDecorator(Protocol):
    """A decorator keeping ``func``'s parameters and result; a call gives a coroutine."""

    def __call__(
        self, func: Callable[P, Awaitable[T]], /
    ) -> Callable[P, Coroutine[object, None, T]]: ...


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


def _name_of(func: object) -> str:
    """A callable's name for log lines: its qualified name, through partials and instances."""
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__qualname__", None)
    return name if isinstance(name, str) else type(func).__qualname__


def _add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)`` (PEP 678); on Python 3.10 the ``__notes__`` list it fills."""
    add = getattr(exc, "add_note", None)
    if callable(add):
        add(note)
    else:
        notes = getattr(exc, "__notes__", None)
        exc.__notes__ = [*notes, note] if isinstance(notes, list) else [note]  # type: ignore[attr-defined]


async def retry_async(
    func: Callable[..., Awaitable[T]],
    *args: object,
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
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
    if not callable(func):
        raise ConfigurationError(
            f"func must be an async callable (or return an awaitable), got {func!r}", field="func"
        )
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
        retry_if=retry_if, budget=budget, budget_key=budget_key, wrap=wrap_exhausted,
        stats=stats, name=name, clock=clock or SYSTEM_CLOCK, rng=rng,
    )


def _not_awaitable(label: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{label} returned {type(value).__name__}, which cannot be awaited; retry helpers "
        "need an async function or a callable that returns an awaitable",
        field="func",
    )


async def _run(
    policy: RetryPolicy,
    func: Callable[..., Awaitable[T]],
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
    *,
    exceptions: tuple[type[BaseException], ...],
    retry_if: Callable[[BaseException], bool] | None,
    budget: RetryBudget | None,
    budget_key: str,
    wrap: bool,
    stats: RetryStats | None,
    name: str | None,
    clock: Clock,
    rng: random.Random | None,
) -> T:
    label = name or _name_of(func)
    testing = active()  # the testing switch: no sleep, attempts capped
    n = policy.max_attempts if testing is None else min(policy.max_attempts, testing.attempts)
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
        awaitable = True
        try:
            pending = func(*args, **kwargs)
            awaitable = inspect.isawaitable(pending)
            if awaitable:
                result = await pending
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
                if wrap:
                    raise RetryExhaustedError(
                        f"{label}: {why}; last error {type(exc).__name__}: {exc}",
                        attempts=attempt,
                        last_error=exc,
                        retry_after=getattr(exc, "retry_after", None),
                    ) from exc
                _add_note(exc, f"{label}: gave up after {attempt} attempt(s) ({why})")
                raise
            wait = policy.backoff(attempt - 1, previous=previous, rng=rng)
            server = server_delay(exc, clock.wall(), label)
            if server is not None and server > wait:
                wait = min(server, policy.max_delay)
            if testing is not None:
                wait = 0.0
            _log.warning(
                "%s: attempt %d/%d failed: %s: %s. Retrying in %.2f s",
                label, attempt, n, type(exc).__name__, exc, wait,
                extra={"operation": label, "attempt": attempt, "max_attempts": n, "delay": wait},
            )
            if stats is not None:
                stats.retries += 1
            previous = wait
            if testing is None:
                await clock.sleep(wait)
        else:
            if not awaitable:  # a plain function: nothing was attempted, nothing to retry
                raise _not_awaitable(label, pending)
            if attempt > 1:
                if stats is not None:
                    stats.recovered += 1
                _log.info(
                    "%s: succeeded after %d attempts", label, attempt,
                    extra={"operation": label, "attempts": attempt},
                )
            return result


_OPTION_NAMES: frozenset[str] = RetryOptions.__optional_keys__


def with_retry(
    max_attempts: int = 3,
    delay: float = 1.0,
    backoff: float = 2.0,
    exceptions: tuple[type[BaseException], ...] | type[BaseException] = (Exception,),
    **options: Unpack[RetryOptions],
) -> RetryDecorator:
    """Decorate an async callable so each call is made through :func:`retry_async`.

    ``options`` are :func:`retry_async`'s other keywords (``max_delay``,
    ``jitter``, ``retry_if``, ``budget``, ``wrap_exhausted``, ``stats``,
    ``clock``, ...: :class:`RetryOptions`). Settings are validated when the
    decorator is applied. The decorated callable keeps its parameters and
    result type; calling it gives a coroutine.
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
    policy = RetryPolicy(
        max_attempts=max_attempts, backoff_factor=delay, multiplier=backoff,
        max_delay=options.get("max_delay", 60.0), jitter=options.get("jitter", "none"),
    )
    exc_types = exceptions if isinstance(exceptions, tuple) else (exceptions,)

    def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[object, None, T]]:
        if not callable(func):
            raise ConfigurationError(
                f"@with_retry needs an async callable; {func!r} is not callable", field="func"
            )
        label = options.get("name") or _name_of(func)

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return await _run(
                policy, func, args, kwargs,
                exceptions=exc_types,
                retry_if=options.get("retry_if"),
                budget=options.get("budget"),
                budget_key=options.get("budget_key", ""),
                wrap=options.get("wrap_exhausted", False),
                stats=options.get("stats"),
                name=label,
                clock=options.get("clock") or SYSTEM_CLOCK,
                rng=options.get("rng"),
            )

        return wrapper

    return decorate


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
    circuit are not retried.
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
    honoured (capped at ``max_delay``).
    """
    return _specialised("api", max_attempts, delay, backoff, options)
